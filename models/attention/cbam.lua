-- Convolutional Block Attention Module (Woo et al., ECCV 2018), Eq. (1)-(3):
--   M_c = sigmoid(fc2(relu(fc1(GAP x))) + fc2(relu(fc1(GMP x)))), shared MLP,
--         h = max(C // reduction, 1), no biases;  x' = x * M_c
--   M_s = sigmoid(conv([mean_c x'; max_c x'])), conv 2 -> 1, k x k (k =
--         spatial_kernel, padding k // 2), no bias, no BN;  out = x' * M_s.
local nn = require "nn"
local common = require "attention.common"

local CBAM = nn.Module "CBAM"

-- Makes fc1 [h, C], fc2 [C, h] and conv [1, 2, k, k].
function CBAM:init(C, o)
  local h = math.max(C // common.int(o.reduction), 1)
  local k = common.int(o.spatial_kernel)
  self.fc1 = nn.Linear(C, h, { bias = false })
  self.fc2 = nn.Linear(h, C, { bias = false })
  self.conv = nn.Conv2d(2, 1, k, { padding = k // 2, bias = false })
end

-- Channel attention, then spatial attention, on x [N, C, H, W].
function CBAM:forward(x)
  local avg = self.fc2(self.fc1(x:mean { 2, 3 }):relu())
  local mx = self.fc2(self.fc1(x:amax { 2, 3 }):relu())
  x = x * common.per_channel((avg + mx):sigmoid())
  return x * self.conv(common.mean_max_c(x)):sigmoid()
end

return CBAM
