-- Helpers shared by the attention modules: kernel-size rules and the small
-- tensor idioms (per-channel scaling, channel mean/max descriptor).
local nn = require "nn"

local C = {}

-- Returns v as a Lua integer (options may arrive as floats such as 16.0).
function C.int(v)
  local i = math.tointeger(math.floor(v + 0.0))
  assert(i ~= nil and i == v, "expected an integer, got " .. tostring(v))
  return i
end

-- ECA's adaptive kernel size: the nearest odd integer to
-- |log2(ch)/gamma + b/gamma| (ties upwards), at least 1.
function C.eca_kernel(ch, gamma, b)
  local t = math.abs(math.log(ch, 2) / gamma + b / gamma)
  local k = math.floor((t - 1.0) / 2.0 + 0.5) * 2 + 1
  return C.int(math.max(k, 1))
end

-- Nearest even integer to x (ties upwards).
function C.nearest_even(x)
  return C.int(math.floor(x / 2.0 + 0.5) * 2)
end

-- Returns s [N, C] reshaped to [N, C, 1, 1] so it scales each channel of an NCHW map.
function C.per_channel(s)
  return s:reshape { s.shape[1], s.shape[2], 1, 1 }
end

-- Returns the CBAM spatial descriptor [mean_c x ; max_c x] of an NCHW map: [N, 2, H, W].
function C.mean_max_c(x)
  return nn.cat({ x:mean(1, true), x:amax(1, true) }, 1)
end

return C
