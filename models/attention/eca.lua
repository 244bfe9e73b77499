-- Efficient Channel Attention (Wang et al., CVPR 2020):
--   w = sigmoid(conv1d_k(GAP x)) over the channel axis, one shared kernel
--   [1, 1, k], zero padding k // 2, no bias; out = x * w.
--   k = |log2(C)/eca_gamma + eca_b/eca_gamma|_odd (C = 16, 32, 64 -> 3).
local nn = require "nn"
local common = require "attention.common"

local ECA = nn.Module "ECA"

-- Makes conv [1, 1, k] with ECA's adaptive k for C channels.
function ECA:init(C, o)
  local k = common.eca_kernel(C, o.eca_gamma, o.eca_b)
  self.conv = nn.Conv1d(1, 1, k, { padding = k // 2, bias = false })
end

-- Scales each channel of x [N, C, H, W] by its attention weight.
function ECA:forward(x)
  local y = x:mean { 2, 3 }                          -- N, C
  local w = self.conv(y:unsqueeze(1)):squeeze(1):sigmoid()
  return x * common.per_channel(w)
end

return ECA
