-- MobileNetV2 (Sandler et al., CVPR 2018) in torchvision's layout and
-- state_dict names: features.0 (conv 3x3/2 + bn + ReLU6), features.1..17
-- inverted residuals (features.i.conv.*), features.18 (1x1 conv to 1280 +
-- bn + ReLU6), classifier.1 (Linear; classifier.0 is torchvision's Dropout,
-- an identity here). Inverted residual with expansion t:
--   [1x1 conv (C -> tC) + bn + ReLU6]  (omitted when t = 1)
--   3x3 depthwise conv (groups = tC, stride s) + bn + ReLU6
--   1x1 conv (tC -> C') + bn  [-> att]  (+ x when s = 1 and C = C').
-- width_mult scales every width (rounded to a multiple of 8 as torchvision).
-- cifar=true uses stride 1 in the stem and in the 24-channel stage (for
-- 32x32 inputs, as in common CIFAR ports), keeping the parameter count.
local nn = require "nn"
local attention = require "attention"

local opt = options {
  classes = 1000,
  in_channels = 3,
  width_mult = 1.0,
  cifar = false,
  attention = "none",
}
input_shape { 3, 224, 224 }

-- torchvision's _make_divisible: v rounded to the nearest multiple of
-- divisor (at least divisor), never more than 10% below v.
local function make_divisible(v, divisor)
  local new_v = math.max(divisor, math.floor(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v then new_v = new_v + divisor end
  return math.tointeger(new_v)
end

-- conv k x k (stride, groups) + bn + ReLU6 as a Sequential (children 0, 1, 2).
local function conv_bn_relu6(cin, cout, k, stride, groups)
  return nn.Sequential(
    nn.Conv2d(cin, cout, k, { stride = stride, padding = (k - 1) // 2, groups = groups, bias = false }),
    nn.BatchNorm2d(cout), nn.ReLU6())
end

local InvertedResidual = nn.Module "InvertedResidual"

-- Builds conv (a Sequential) for cin -> cout with expansion t and stride.
function InvertedResidual:init(cin, cout, stride, t, att)
  local hidden = math.tointeger(cin * t)
  self.use_res = (stride == 1 and cin == cout)
  local conv = nn.Sequential()
  if t ~= 1 then conv:add(conv_bn_relu6(cin, hidden, 1, 1, 1)) end
  conv:add(conv_bn_relu6(hidden, hidden, 3, stride, hidden))
  conv:add(nn.Conv2d(hidden, cout, 1, { bias = false }))
  conv:add(nn.BatchNorm2d(cout))
  self.conv = conv
  local a = attention.make(att, cout)
  if a ~= nil then self.att = a end
end

-- Block forward (residual only when shapes match).
function InvertedResidual:forward(x)
  local out = self.conv(x)
  if self.att ~= nil then out = self.att(out) end
  if self.use_res then return x + out end
  return out
end

local MobileNetV2 = nn.Module "MobileNetV2"

-- t, c, n, s rows of the paper's Table 2.
local settings = {
  { 1, 16, 1, 1 }, { 6, 24, 2, 2 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 },
  { 6, 96, 3, 1 }, { 6, 160, 3, 2 }, { 6, 320, 1, 1 },
}

-- features (stem, 17 inverted residuals, 1x1 head conv) and classifier.
function MobileNetV2:init(o)
  local cin = make_divisible(32 * o.width_mult, 8)
  local last = make_divisible(1280 * math.max(1.0, o.width_mult), 8)
  local features = nn.Sequential()
  features:add(conv_bn_relu6(o.in_channels, cin, 3, o.cifar and 1 or 2, 1))
  for i, row in ipairs(settings) do
    local t, c, n, s = row[1], row[2], row[3], row[4]
    if o.cifar and i == 2 then s = 1 end
    local cout = make_divisible(c * o.width_mult, 8)
    for j = 1, n do
      features:add(InvertedResidual(cin, cout, j == 1 and s or 1, t, o.attention))
      cin = cout
    end
  end
  features:add(conv_bn_relu6(cin, last, 1, 1, 1))
  self.features = features
  self.classifier = nn.Sequential(nn.Identity(), nn.Linear(last, o.classes))
end

-- features - GAP - classifier.
function MobileNetV2:forward(x)
  return self.classifier(self.features(x):mean { 2, 3 })
end

return MobileNetV2(opt)
