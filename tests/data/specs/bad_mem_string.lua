-- A 1 GB string: stopped by the memory cap.
local s = string.rep("x", 1e9)
