-- A runaway loop in a function run under pcall at another line: the error
-- names the loop's line once.
local function spin()
  while true do end
end
local ok = pcall(spin)
