-- The costed string and table functions still do their job on everyday
-- inputs; the spec raises "strings ok" when every check passed.
local w, h = ("32x16"):match("(%d+)x(%d+)")
assert(w == "32" and h == "16")
local parts = {}
for p in ("16,32,64"):gmatch("[^,]+") do parts[#parts + 1] = tonumber(p) end
assert(#parts == 3 and parts[3] == 64)
assert(("a-b-c"):gsub("%-", "_") == "a_b_c")
assert(string.find("layer1.0.conv", ".", 1, true) == 7)
assert(("ab"):rep(3, ",") == "ab,ab,ab" and ("x"):rep(0) == "")
local t = table.move({ 1, 2, 3 }, 1, 3, 2)
assert(#t == 4 and t[4] == 3)
error("strings ok")
