-- A shape error: the second conv expects 32 input channels but gets 16.
local nn = require "nn"
input_shape { 3, 8, 8 }

local Net = nn.Module "Net"
function Net:init()
  self.conv1 = nn.Conv2d(3, 16, 3, { padding = 1 })
  self.conv2 = nn.Conv2d(32, 8, 3, { padding = 1 })
end
function Net:forward(x)
  local y = self.conv1(x)
  return self.conv2(y)
end

return Net()
