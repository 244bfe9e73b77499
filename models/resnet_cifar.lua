-- CIFAR ResNet-(6n+2) (He et al., CVPR 2016, Sec. 4.2): conv3x3(16) - BN -
-- ReLU - three stages of n basic blocks (16/32/64 channels, stride 2 at the
-- start of stages 2 and 3) - global average pool - fc. An attention module
-- 'att' sits in every block after the second BN, before the addition; the
-- shortcut is a 1x1 conv + BN projection when the shape changes.
-- State_dict names follow ../shared/reference/torch_models.py (CifarResNet).
local nn = require "nn"

local opt = options {
  depth = 20,         -- 20 | 32 | 44 | 56 | 110 | ... (6n+2)
  attention = "none", -- see models/attention.lua
  classes = 10,
  in_channels = 3,
}
input_shape { 3, 32, 32 }

local Shortcut = nn.Module "Shortcut"
-- Projection shortcut: 1x1 conv with stride s, then BN.
function Shortcut:init(cin, cout, stride)
  self.conv = nn.Conv2d(cin, cout, 1, { stride = stride })
  self.bn = nn.BatchNorm2d(cout)
end
function Shortcut:forward(x)
  return self.bn(self.conv(x))
end

local Block = nn.Module "BasicBlock"
-- conv3x3(stride) - bn - relu - conv3x3 - bn [- att] + shortcut, relu.
function Block:init(cin, cout, stride, attention)
  self.conv1 = nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1 })
  self.bn1 = nn.BatchNorm2d(cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1 })
  self.bn2 = nn.BatchNorm2d(cout)
  local att = require("attention").make(attention, cout)
  if att ~= nil then self.att = att end
  if stride ~= 1 or cin ~= cout then self.shortcut = Shortcut(cin, cout, stride) end
end
function Block:forward(x)
  local out = self.bn1(self.conv1(x)):relu()
  out = self.bn2(self.conv2(out))
  if self.att ~= nil then out = self.att(out) end
  local sc = x
  if self.shortcut ~= nil then sc = self.shortcut(x) end
  return (out + sc):relu()
end

local ResNet = nn.Module "CifarResNet"
function ResNet:init(o)
  local depth = math.tointeger(o.depth)
  if depth == nil or depth < 8 or (depth - 2) % 6 ~= 0 then
    error("resnet_cifar: depth must be 6n+2 (20, 32, 44, 56, 110), got " .. tostring(o.depth))
  end
  local n = (depth - 2) // 6
  self.conv1 = nn.Conv2d(o.in_channels, 16, 3, { padding = 1 })
  self.bn1 = nn.BatchNorm2d(16)
  self.layers = nn.Sequential()
  local cin = 16
  for stage, cout in ipairs { 16, 32, 64 } do
    for j = 1, n do
      local stride = (stage > 1 and j == 1) and 2 or 1
      self.layers:add(Block(cin, cout, stride, o.attention))
      cin = cout
    end
  end
  self.fc = nn.Linear(64, o.classes)
end
function ResNet:forward(x)
  x = self.bn1(self.conv1(x)):relu()
  x = self.layers(x)
  return self.fc(x:mean { 2, 3 })
end

return ResNet(opt)
