-- The seed's "channel and spatial attention module" and its ablations:
--   CAM (channel self-attention, as DANet's): X = x as [N, C, HW];
--       A = softmax(X X^T, last axis);  out = gamma * (A X as [N,C,H,W]) + x,
--       gamma a scalar parameter (0 in a fresh model)
--   SAM (CBAM's spatial attention): out = x * sigmoid(conv([mean_c x; max_c x])),
--       conv 2 -> 1, k x k (spatial_kernel), padding k // 2, no bias
--   CSM = SAM(CAM(x)) (the seed's order), CSM_SC = CAM(SAM(x)) (its ablation).
-- Parameter names: gamma (CAM), conv.weight (SAM), both flat in CSM/CSM_SC.
local nn = require "nn"
local common = require "attention.common"

-- Channel self-attention of x with scalar parameter gamma.
local function cam(x, gamma)
  local n, c, h, w = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
  local xf = x:reshape { n, c, h * w }
  local a = nn.bmm(xf, xf:transpose(1, 2)):softmax(-1)
  return gamma * nn.bmm(a, xf):reshape { n, c, h, w } + x
end

-- Spatial attention of x with the 2 -> 1 conv module 'conv'.
local function sam(x, conv)
  return x * conv(common.mean_max_c(x)):sigmoid()
end

-- Returns the SAM conv for hyper-parameters o.
local function sam_conv(o)
  local k = common.int(o.spatial_kernel)
  return nn.Conv2d(2, 1, k, { padding = k // 2, bias = false })
end

local M = {}

M.CAM = nn.Module "CAM"
-- Makes gamma (scalar, 0).
function M.CAM:init(C, o)
  local _ = C, o
  self.gamma = nn.Parameter({}, 0)
end
function M.CAM:forward(x) return cam(x, self.gamma) end

M.SAM = nn.Module "SAM"
-- Makes conv [1, 2, k, k].
function M.SAM:init(C, o)
  local _ = C
  self.conv = sam_conv(o)
end
function M.SAM:forward(x) return sam(x, self.conv) end

-- Gives module m both CAM's gamma (scalar, 0) and SAM's conv [1, 2, k, k].
local function init_both(m, o)
  m.gamma = nn.Parameter({}, 0)
  m.conv = sam_conv(o)
end

M.CSM = nn.Module "CSM"
function M.CSM:init(C, o) local _ = C; init_both(self, o) end
-- CAM, then SAM.
function M.CSM:forward(x) return sam(cam(x, self.gamma), self.conv) end

M.CSM_SC = nn.Module "CSM_SC"
function M.CSM_SC:init(C, o) local _ = C; init_both(self, o) end
-- SAM, then CAM.
function M.CSM_SC:forward(x) return cam(sam(x, self.conv), self.gamma) end

return M
