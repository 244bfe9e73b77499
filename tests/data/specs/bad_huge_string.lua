-- A string larger than Lua allows: a clear error before any allocation.
local s = string.rep("x", 1e10)
