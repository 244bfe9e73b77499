-- Binary chunks cannot be loaded (and string.dump does not exist).
assert(string.dump == nil, "string.dump is available")
local f = assert(load("\27LuaT\0\25\147\13\10\26\10\4\8\8xV\0\0\0\0\0\0\0\0\0\0\0(w@"))
