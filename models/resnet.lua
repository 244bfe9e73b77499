-- ImageNet-style ResNet-18/34/50/101 (He et al., CVPR 2016; torchvision
-- layout and state_dict names: conv1, bn1, layer1.0.conv1, ...,
-- layer1.0.downsample.0/1, fc), with an optional attention module 'att' at
-- the end of every residual branch (after the last BN, before the addition).
-- Bottleneck blocks put the stride on the 3x3 conv (torchvision's "v1.5").
-- cifar_stem=true replaces the 7x7/2 conv + 3x3/2 max pool by a 3x3/1 conv.
local nn = require "nn"
local attention = require "attention"

local opt = options {
  depth = 18,            -- 18 | 34 | 50 | 101
  classes = 1000,
  in_channels = 3,
  cifar_stem = false,
  attention = "none",
}
input_shape { 3, 224, 224 }

-- depth -> block kind and blocks per stage.
local configs = {
  [18] = { "basic", { 2, 2, 2, 2 } },
  [34] = { "basic", { 3, 4, 6, 3 } },
  [50] = { "bottleneck", { 3, 4, 6, 3 } },
  [101] = { "bottleneck", { 3, 4, 23, 3 } },
}

-- The projection shortcut: 1x1 conv (stride s) + BN, named downsample.0/1.
local function downsample(cin, cout, stride)
  return nn.Sequential(nn.Conv2d(cin, cout, 1, { stride = stride, bias = false }), nn.BatchNorm2d(cout))
end

local Basic = nn.Module "BasicBlock"
-- conv3x3(stride) - bn - relu - conv3x3 - bn [- att] + shortcut, relu.
function Basic:init(cin, planes, stride, att)
  self.conv1 = nn.Conv2d(cin, planes, 3, { stride = stride, padding = 1, bias = false })
  self.bn1 = nn.BatchNorm2d(planes)
  self.conv2 = nn.Conv2d(planes, planes, 3, { padding = 1, bias = false })
  self.bn2 = nn.BatchNorm2d(planes)
  local a = attention.make(att, planes)
  if a ~= nil then self.att = a end
  if stride ~= 1 or cin ~= planes then self.downsample = downsample(cin, planes, stride) end
end

-- Residual block forward.
function Basic:forward(x)
  local out = self.bn1(self.conv1(x)):relu()
  out = self.bn2(self.conv2(out))
  if self.att ~= nil then out = self.att(out) end
  local sc = x
  if self.downsample ~= nil then sc = self.downsample(x) end
  return (out + sc):relu()
end

local Bottleneck = nn.Module "Bottleneck"
-- conv1x1 - bn - relu - conv3x3(stride) - bn - relu - conv1x1(x4) - bn [- att] + shortcut, relu.
function Bottleneck:init(cin, planes, stride, att)
  local cout = planes * 4
  self.conv1 = nn.Conv2d(cin, planes, 1, { bias = false })
  self.bn1 = nn.BatchNorm2d(planes)
  self.conv2 = nn.Conv2d(planes, planes, 3, { stride = stride, padding = 1, bias = false })
  self.bn2 = nn.BatchNorm2d(planes)
  self.conv3 = nn.Conv2d(planes, cout, 1, { bias = false })
  self.bn3 = nn.BatchNorm2d(cout)
  local a = attention.make(att, cout)
  if a ~= nil then self.att = a end
  if stride ~= 1 or cin ~= cout then self.downsample = downsample(cin, cout, stride) end
end

-- Residual block forward.
function Bottleneck:forward(x)
  local out = self.bn1(self.conv1(x)):relu()
  out = self.bn2(self.conv2(out)):relu()
  out = self.bn3(self.conv3(out))
  if self.att ~= nil then out = self.att(out) end
  local sc = x
  if self.downsample ~= nil then sc = self.downsample(x) end
  return (out + sc):relu()
end

local ResNet = nn.Module "ResNet"

-- Builds the stem, layer1..layer4 and the classifier for options o.
function ResNet:init(o)
  local cfg = configs[o.depth]
  if cfg == nil then error("resnet: depth must be 18, 34, 50 or 101, got " .. tostring(o.depth)) end
  local Block = cfg[1] == "basic" and Basic or Bottleneck
  local expansion = cfg[1] == "basic" and 1 or 4
  self.cifar_stem = o.cifar_stem
  if o.cifar_stem then
    self.conv1 = nn.Conv2d(o.in_channels, 64, 3, { stride = 1, padding = 1, bias = false })
  else
    self.conv1 = nn.Conv2d(o.in_channels, 64, 7, { stride = 2, padding = 3, bias = false })
  end
  self.bn1 = nn.BatchNorm2d(64)
  local cin = 64
  for stage = 1, 4 do
    local planes = 64 << (stage - 1)
    local layer = nn.Sequential()
    for j = 1, cfg[2][stage] do
      local stride = (stage > 1 and j == 1) and 2 or 1
      layer:add(Block(cin, planes, stride, o.attention))
      cin = planes * expansion
    end
    self["layer" .. stage] = layer
  end
  self.fc = nn.Linear(cin, o.classes)
end

-- Stem, four stages, global average pool, fc.
function ResNet:forward(x)
  x = self.bn1(self.conv1(x)):relu()
  if not self.cifar_stem then x = nn.max_pool2d(x, 3, { stride = 2, padding = 1 }) end
  x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
  return self.fc(x:mean { 2, 3 })
end

return ResNet(opt)
