-- A 1 GB string: stopped by the memory cap (10^4 copies of 100 kB are
-- within the instruction budget; 10^9 copies of one byte would not be).
local s = string.rep("x", 1e5):rep(1e4)
