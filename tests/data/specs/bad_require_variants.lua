-- Every escape from the models folder is rejected.
for _, name in ipairs { "../../etc/passwd", "/etc/passwd", "nn.lua", "NN", "a..b", "", "x/../nn", ".nn", "nn/" } do
  local ok = pcall(require, name)
  assert(not ok, "require '" .. name .. "' succeeded")
end
error("all rejected")
