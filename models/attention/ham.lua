-- Hybrid Attention Module (Li et al., Pattern Recognition 2022, 108785):
-- channel submodule
--   F_add = (GAP x + GMP x)/2 + alpha*GAP x + beta*GMP x  (alpha, beta scalars)
--   A_C = sigmoid(conv1d_k(F_add)) (ECA's k);  F' = x * A_C
-- spatial submodule with channel separation
--   C_im = nearest even number to ham_lambda * C;  mask_im = topk_mask of A_C
--   (the C_im largest per sample, ties kept, no gradient), mask_sub = 1 - mask_im
--   F1 = F' * mask_im, F2 = F' * mask_sub
--   d_i = [sum_c F_i / C_i ; max_c F_i] (max over all C channels of F_i)
--   A_S,i = sigmoid(relu(bn(conv2d(d_i)))), one shared conv2d (2 -> 1, k x k)
--   and one shared BatchNorm2d(1), called once per group (i = 1, then 2)
--   out = A_S,1 * F1 + A_S,2 * F2
local nn = require "nn"
local common = require "attention.common"

local HAM = nn.Module "HAM"

-- Makes alpha, beta (scalars, 0.5), conv1d [1, 1, k], conv2d [1, 2, ks, ks], bn.
function HAM:init(C, o)
  local k = common.eca_kernel(C, o.eca_gamma, o.eca_b)
  local ks = common.int(o.spatial_kernel)
  self.c_im = common.nearest_even(C * o.ham_lambda)
  self.c_sub = C - self.c_im
  assert(self.c_im > 0 and self.c_im < C,
    "ham: C_im = " .. self.c_im .. " must be in (0, " .. C .. ")")
  self.alpha = nn.Parameter({}, 0.5)
  self.beta = nn.Parameter({}, 0.5)
  self.conv1d = nn.Conv1d(1, 1, k, { padding = k // 2, bias = false })
  self.conv2d = nn.Conv2d(2, 1, ks, { padding = ks // 2, bias = false })
  self.bn = nn.BatchNorm2d(1)
end

-- Spatial attention map of one channel group f (c_i of its channels live).
function HAM:spatial(f, c_i)
  local d = nn.cat({ f:sum(1, true) / c_i, f:amax(1, true) }, 1)
  return self.bn(self.conv2d(d)):relu():sigmoid()
end

-- Applies the channel then the separated spatial attention to x [N, C, H, W].
function HAM:forward(x)
  local f_avg = x:mean { 2, 3 }
  local f_max = x:amax { 2, 3 }
  local f_add = (f_avg + f_max) * 0.5 + self.alpha * f_avg + self.beta * f_max
  local a_c = self.conv1d(f_add:unsqueeze(1)):squeeze(1):sigmoid()   -- N, C
  local fp = x * common.per_channel(a_c)
  local m_im = common.per_channel(a_c:topk_mask(self.c_im, 1))
  local m_sub = 1 - m_im
  local f1 = fp * m_im
  local f2 = fp * m_sub
  local a_s1 = self:spatial(f1, self.c_im)
  local a_s2 = self:spatial(f2, self.c_sub)
  return a_s1 * f1 + a_s2 * f2
end

return HAM
