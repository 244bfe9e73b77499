-- Squash-and-spatial attention (SSANet; MODULES.md), no weights but one BN:
--   w = GAP x;  S = sum_c w_c x_c  [N, 1, H, W];  out = x * sigmoid(bn(S)),
--   bn = BatchNorm2d(1).
local nn = require "nn"
local common = require "attention.common"

local SSA = nn.Module "SSA"

-- Makes bn (BatchNorm2d(1)); C is unused.
function SSA:init(C, o)
  local _ = C, o
  self.bn = nn.BatchNorm2d(1)
end

-- Scales every position of x [N, C, H, W] by its saliency.
function SSA:forward(x)
  local w = x:mean { 2, 3 }
  local s = (x * common.per_channel(w)):sum(1, true)
  return self.bn(s):sigmoid() * x
end

return SSA
