-- ResNeXt-29 for CIFAR (Xie et al., CVPR 2017, Sec. 5.3), following the
-- PyTorch port prlz77/ResNeXt.pytorch: a 3x3 conv stem (64), three stages of
-- (depth - 2) / 9 bottlenecks with output widths 64*widen, 128*widen,
-- 256*widen (256, 512, 1024) and strides 1, 2, 2, global average pool, fc.
-- Bottleneck (inner width D = cardinality * floor(width * cout / (64*widen))):
--   conv_reduce 1x1 -> bn_reduce -> relu -> conv_conv 3x3 (stride, groups =
--   cardinality) -> bn -> relu -> conv_expand 1x1 -> bn_expand [-> att]
--   + shortcut (shortcut.conv 1x1 + shortcut.bn when the shape changes) -> relu.
-- ResNeXt-29 8x64d: cardinality=8 width=64; 32x4d: cardinality=32 width=4.
-- Names: conv1, bn1, stage1.0.conv_reduce ..., stage3..., fc.
local nn = require "nn"
local attention = require "attention"

local opt = options {
  depth = 29,
  cardinality = 8,
  width = 64,      -- base width: channels per group in the first stage
  widen = 4,       -- stage output widths 64*widen, 128*widen, 256*widen
  classes = 10,
  in_channels = 3,
  attention = "none",
}
input_shape { 3, 32, 32 }

local Shortcut = nn.Module "Shortcut"

-- Projection: 1x1 conv (stride) + BN, named conv and bn.
function Shortcut:init(cin, cout, stride)
  self.conv = nn.Conv2d(cin, cout, 1, { stride = stride, bias = false })
  self.bn = nn.BatchNorm2d(cout)
end

-- bn(conv(x)).
function Shortcut:forward(x) return self.bn(self.conv(x)) end

local Block = nn.Module "ResNeXtBottleneck"

-- cin -> cout bottleneck with D = cardinality * floor(width * cout / (64 * widen)).
function Block:init(cin, cout, stride, o)
  local d = math.tointeger(o.cardinality * math.floor(o.width * cout / (64 * o.widen)))
  self.conv_reduce = nn.Conv2d(cin, d, 1, { bias = false })
  self.bn_reduce = nn.BatchNorm2d(d)
  self.conv_conv = nn.Conv2d(d, d, 3, { stride = stride, padding = 1, groups = o.cardinality, bias = false })
  self.bn = nn.BatchNorm2d(d)
  self.conv_expand = nn.Conv2d(d, cout, 1, { bias = false })
  self.bn_expand = nn.BatchNorm2d(cout)
  local a = attention.make(o.attention, cout)
  if a ~= nil then self.att = a end
  if cin ~= cout or stride ~= 1 then self.shortcut = Shortcut(cin, cout, stride) end
end

-- Bottleneck forward.
function Block:forward(x)
  local out = self.bn_reduce(self.conv_reduce(x)):relu()
  out = self.bn(self.conv_conv(out)):relu()
  out = self.bn_expand(self.conv_expand(out))
  if self.att ~= nil then out = self.att(out) end
  local sc = x
  if self.shortcut ~= nil then sc = self.shortcut(x) end
  return (out + sc):relu()
end

local ResNeXt = nn.Module "ResNeXt"

-- conv1 3x3 (64) - bn1 - relu - stage1..3 - GAP - fc.
function ResNeXt:init(o)
  assert((o.depth - 2) % 9 == 0, "resnext: depth must be 9n+2, got " .. tostring(o.depth))
  local n = math.tointeger((o.depth - 2) // 9)
  local widths = { 64, math.tointeger(64 * o.widen), math.tointeger(128 * o.widen),
                   math.tointeger(256 * o.widen) }
  self.conv1 = nn.Conv2d(o.in_channels, 64, 3, { padding = 1, bias = false })
  self.bn1 = nn.BatchNorm2d(64)
  for s = 1, 3 do
    local stage = nn.Sequential()
    for j = 1, n do
      local cin = j == 1 and widths[s] or widths[s + 1]
      local stride = (j == 1 and s > 1) and 2 or 1
      stage:add(Block(cin, widths[s + 1], stride, o))
    end
    self["stage" .. s] = stage
  end
  self.fc = nn.Linear(widths[4], o.classes)
end

-- Network forward: logits [N, classes].
function ResNeXt:forward(x)
  x = self.bn1(self.conv1(x)):relu()
  x = self.stage3(self.stage2(self.stage1(x)))
  return self.fc(x:mean { 2, 3 })
end

return ResNeXt(opt)
