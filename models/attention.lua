-- The attention-module registry: attention.make(name, C, opt) builds the
-- module called 'name' for a C-channel feature map (nil for "none").
-- The modules' hyper-parameters are declared here as options (-D key=value
-- overrides them); 'opt' may override any of them per call.
local M = {}

-- Paper defaults (see docs/MODELS.md).
M.defaults = options {
  reduction = 16,      -- SE / CBAM / LGAM gate MLP: hidden = max(C // reduction, 1)
  eca_gamma = 2,       -- ECA / HAM kernel k = |log2(C)/eca_gamma + eca_b/eca_gamma|_odd
  eca_b = 1,
  ham_lambda = 0.6,    -- HAM: C_im = nearest even number to ham_lambda * C
  lgam_groups = 4,     -- LGAM: number of ladder groups
  spatial_kernel = 7,  -- CBAM / HAM / SAM / CSM spatial conv size (padding k // 2)
}

-- name -> function(C, o) returning a module instance.
local builders = {
  se = function(C, o) return require("attention.se")(C, o) end,
  eca = function(C, o) return require("attention.eca")(C, o) end,
  cbam = function(C, o) return require("attention.cbam")(C, o) end,
  ham = function(C, o) return require("attention.ham")(C, o) end,
  lgam = function(C, o) return require("attention.lgam")(C, o) end,
  ssa = function(C, o) return require("attention.ssa")(C, o) end,
  csm = function(C, o) return require("attention.csm").CSM(C, o) end,
  cam = function(C, o) return require("attention.csm").CAM(C, o) end,
  sam = function(C, o) return require("attention.csm").SAM(C, o) end,
  csm_sc = function(C, o) return require("attention.csm").CSM_SC(C, o) end,
  spatial_softmax = function(C, o) return require("attention.spatial_softmax")(C, o) end,
}

-- Every valid name, in the documented order.
M.names = { "none", "se", "eca", "cbam", "ham", "lgam", "ssa", "csm", "cam", "sam",
            "csm_sc", "spatial_softmax" }

-- Returns the hyper-parameters: the declared options overridden by 'opt'.
local function merged(opt)
  local o = {}
  for k, v in pairs(M.defaults) do o[k] = v end
  if opt ~= nil then
    for k, v in pairs(opt) do
      if M.defaults[k] == nil then
        error("attention: unknown hyper-parameter '" .. tostring(k) .. "'", 3)
      end
      o[k] = v
    end
  end
  return o
end

-- Returns a new attention module 'name' for C channels, or nil for "none";
-- an unknown name is an error listing the valid names.
function M.make(name, C, opt)
  if name == nil or name == "none" then return nil end
  local b = builders[name]
  if b == nil then
    error("unknown attention '" .. tostring(name) .. "' (valid: " .. table.concat(M.names, ", ") .. ")", 2)
  end
  return b(C, merged(opt))
end

return M
