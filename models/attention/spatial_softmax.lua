-- Softmax spatial attention (the seed "attention-based CNN"):
--   a = conv(x), 1x1, C -> 1, no bias;  P = softmax of a over the H*W
--   positions of each sample;  out = x * (H*W*P) (mean weight 1).
local nn = require "nn"

local SpatialSoftmax = nn.Module "SpatialSoftmax"

-- Makes conv [1, C, 1, 1].
function SpatialSoftmax:init(C, o)
  local _ = o
  self.conv = nn.Conv2d(C, 1, 1, { bias = false })
end

-- Reweights the positions of x [N, C, H, W] by a softmax over H*W.
function SpatialSoftmax:forward(x)
  local n, h, w = x.shape[1], x.shape[3], x.shape[4]
  local p = self.conv(x):reshape { n, h * w }:softmax(1):reshape { n, 1, h, w }
  return x * (p * (h * w))
end

return SpatialSoftmax
