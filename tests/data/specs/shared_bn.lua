-- One BatchNorm2d called twice (as HAM shares its bn): the training graph
-- updates its running statistics twice, in call order.
local nn = require "nn"
input_shape { 2, 3, 3 }

local Net = nn.Module "Net"
function Net:init()
  self.bn = nn.BatchNorm2d(2)
end
function Net:forward(x)
  return self.bn(self.bn(x)):mean { 2, 3 }
end

return Net()
