-- A small valid spec (docs/LANGUAGE.md example) used by the front-end tests.
local nn = require "nn"

local opt = options { classes = 10, width = 16, use_bn = true, act = "relu" }
input_shape { 3, 8, 8 }

local Net = nn.Module "Net"
function Net:init(o)
  self.conv = nn.Conv2d(3, o.width, 3, { padding = 1 })
  if o.use_bn then self.bn = nn.BatchNorm2d(o.width) end
  self.fc = nn.Linear(o.width, o.classes)
end
function Net:forward(x)
  x = self.conv(x)
  if self.bn ~= nil then x = self.bn(x) end
  x = x[opt.act](x)
  return self.fc(x:mean { 2, 3 })
end

return Net(opt)
