-- 10^12 copies of an empty string: no memory, but hours in C without the
-- charge of string.rep's copies to the instruction budget.
local s = (""):rep(1e12)
