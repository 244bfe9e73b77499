-- Wide ResNet WRN-depth-k (Zagoruyko & Komodakis, BMVC 2016), CIFAR layout
-- with pre-activation blocks, following the widely used PyTorch port
-- (xternalz/WideResNet-pytorch) and its state_dict names:
--   conv1, block1.layer.0.{bn1, conv1, bn2, conv2, convShortcut}, ...,
--   block3..., bn1, fc.
-- n = (depth - 4) / 6 blocks per group, widths 16k, 32k, 64k, strides 1, 2, 2.
-- A block whose input and output widths differ pre-activates its input and
-- feeds that to both branches (convShortcut, a 1x1 conv, on the shortcut).
-- The optional attention module 'att' runs on the residual branch after
-- conv2, before the addition. Dropout is not modelled (drop rate 0).
local nn = require "nn"
local attention = require "attention"

local opt = options {
  depth = 16,
  widen = 8,
  classes = 10,
  in_channels = 3,
  attention = "none",
}
input_shape { 3, 32, 32 }

local Block = nn.Module "WideBasic"

-- bn1 - relu - conv1 3x3(stride) - bn2 - relu - conv2 3x3 [- att] + shortcut.
function Block:init(cin, cout, stride, att)
  self.equal = (cin == cout and stride == 1)
  self.bn1 = nn.BatchNorm2d(cin)
  self.conv1 = nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1, bias = false })
  self.bn2 = nn.BatchNorm2d(cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1, bias = false })
  local a = attention.make(att, cout)
  if a ~= nil then self.att = a end
  if not self.equal then
    self.convShortcut = nn.Conv2d(cin, cout, 1, { stride = stride, bias = false })
  end
end

-- Pre-activation residual block forward.
function Block:forward(x)
  local act = self.bn1(x):relu()
  local out = self.conv2(self.bn2(self.conv1(act)):relu())
  if self.att ~= nil then out = self.att(out) end
  if self.equal then return x + out end
  return self.convShortcut(act) + out
end

local Group = nn.Module "NetworkBlock"

-- n blocks cin -> cout, the first with the stride; children layer.0 ...
function Group:init(n, cin, cout, stride, att)
  local layer = nn.Sequential()
  for i = 1, n do
    layer:add(Block(i == 1 and cin or cout, cout, i == 1 and stride or 1, att))
  end
  self.layer = layer
end

-- Runs the blocks in order.
function Group:forward(x) return self.layer(x) end

local WRN = nn.Module "WideResNet"

-- conv1 (16) - block1 (16k) - block2 (32k, /2) - block3 (64k, /2) - bn1 - relu - GAP - fc.
function WRN:init(o)
  assert((o.depth - 4) % 6 == 0, "wideresnet: depth must be 6n+4, got " .. tostring(o.depth))
  local n = math.tointeger((o.depth - 4) // 6)
  local k = o.widen
  local w = { 16, math.tointeger(16 * k), math.tointeger(32 * k), math.tointeger(64 * k) }
  self.conv1 = nn.Conv2d(o.in_channels, w[1], 3, { padding = 1, bias = false })
  self.block1 = Group(n, w[1], w[2], 1, o.attention)
  self.block2 = Group(n, w[2], w[3], 2, o.attention)
  self.block3 = Group(n, w[3], w[4], 2, o.attention)
  self.bn1 = nn.BatchNorm2d(w[4])
  self.fc = nn.Linear(w[4], o.classes)
end

-- Network forward: logits [N, classes].
function WRN:forward(x)
  x = self.block3(self.block2(self.block1(self.conv1(x))))
  x = self.bn1(x):relu()
  return self.fc(x:mean { 2, 3 })
end

return WRN(opt)
