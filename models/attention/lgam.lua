-- Group-wise ladder attention (LGAM; MODULES.md):
--   split x into G = lgam_groups channel groups x_1..x_G (C' = C/G);
--   gate g_k(v) = v * sigmoid(bn(fc2(relu(fc1(GAP v))))) + v, fc1: C' -> h,
--   fc2: h -> C', h = max(C' // reduction, 1), no biases, bn = BatchNorm1d(C');
--   y_1 = g_1(x_1), y_k = g_k(x_k + y_{k-1});  A' = concat(y_1..y_G)
--   M = sigmoid(relu(sum_c A'));  out = A' * M + x.
local nn = require "nn"
local common = require "attention.common"

local Gate = nn.Module "LadderGate"

-- Makes fc1 [h, c], fc2 [c, h] and bn (BatchNorm1d(c)) for a c-channel group.
function Gate:init(c, reduction)
  local h = math.max(c // reduction, 1)
  self.fc1 = nn.Linear(c, h, { bias = false })
  self.fc2 = nn.Linear(h, c, { bias = false })
  self.bn = nn.BatchNorm1d(c)
end

-- g(v) = v * sigmoid(bn(MLP(GAP v))) + v.
function Gate:forward(v)
  local w = self.bn(self.fc2(self.fc1(v:mean { 2, 3 }):relu())):sigmoid()
  return v * common.per_channel(w) + v
end

local LGAM = nn.Module "LGAM"

-- Makes gates.0 .. gates.{G-1}; C must be divisible by G.
function LGAM:init(C, o)
  local groups = common.int(o.lgam_groups)
  assert(C % groups == 0, "lgam: " .. C .. " channels do not split into " .. groups .. " groups")
  self.groups = groups
  local gates = {}
  for i = 1, groups do gates[i] = Gate(C // groups, common.int(o.reduction)) end
  self.gates = nn.ModuleList(gates)
end

-- Ladder of gated groups, channel-sum spatial map, residual on x [N, C, H, W].
function LGAM:forward(x)
  local xs = x:chunk(self.groups, 1)
  local ys = {}
  local prev = nil
  for i = 1, self.groups do
    local v = xs[i]
    if prev ~= nil then v = v + prev end
    prev = self.gates[i - 1](v)
    ys[i] = prev
  end
  local a = nn.cat(ys, 1)
  local m = a:sum(1, true):relu():sigmoid()
  return a * m + x
end

return LGAM
