-- Squeeze-and-Excitation (Hu et al., CVPR 2018):
--   s = sigmoid(fc2(relu(fc1(GAP x)))), fc1: C -> h, fc2: h -> C, no biases,
--   h = max(C // reduction, 1); out = x * s.
local nn = require "nn"
local common = require "attention.common"

local SE = nn.Module "SE"

-- Makes fc1 [h, C] and fc2 [C, h] for C channels; o.reduction sets h.
function SE:init(C, o)
  local h = math.max(C // common.int(o.reduction), 1)
  self.fc1 = nn.Linear(C, h, { bias = false })
  self.fc2 = nn.Linear(h, C, { bias = false })
end

-- Scales each channel of x [N, C, H, W] by its excitation.
function SE:forward(x)
  local z = x:mean { 2, 3 }
  local s = self.fc2(self.fc1(z):relu()):sigmoid()
  return x * common.per_channel(s)
end

return SE
