-- table.move over 10^15 empty slots allocates nothing and loops in C.
local t = {}
local function run()
  return table.move(t, 1, 1e15, 1)
end
local ok = pcall(run)
