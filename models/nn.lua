-- The nn library of attnc model specs (docs/LANGUAGE.md): tensor methods,
-- functional layers, the module system (classes, children, parameters and
-- buffers with PyTorch state_dict names) and the built-in layers.
-- Written on top of the front end's C primitives (frontend/fe_tensor.c),
-- which the sandbox's require passes as the chunk's second argument.
local _, C = ...
assert(type(C) == "table" and C.op, "nn: must be loaded through require")

local nn = {}
local T = {} -- tensor methods and metamethods

local is_tensor = C.is_tensor

-- ---------------------------------------------------------------- helpers

-- Returns x as a tensor: numbers become scalar constants of like's dtype.
local function lift(x, like)
  if type(x) == "number" then return C.const(x, like) end
  if not is_tensor(x) then error("expected a tensor or a number, got " .. type(x), 3) end
  return x
end

-- Returns v as a Lua integer or raises an error naming 'what'.
local function int(v, what)
  local i = math.tointeger(v)
  if i == nil then error((what or "value") .. " must be an integer, got " .. tostring(v), 3) end
  return i
end

-- Normalizes dimension d (0-based, negative from the end) for rank r.
local function dim(d, r)
  d = int(d, "dimension")
  if d < 0 then d = d + r end
  if d < 0 or d >= r then error("dimension " .. tostring(d) .. " out of range for rank " .. r, 3) end
  return d
end

-- Returns the number (or pair) 'v' as a list of n integers.
local function tuple(v, n, what)
  if type(v) == "number" then
    local t = {}
    for i = 1, n do t[i] = int(v, what) end
    return t
  end
  if type(v) ~= "table" or #v ~= n then error(what .. " must be a number or " .. n .. " numbers", 3) end
  local t = {}
  for i = 1, n do t[i] = int(v[i], what) end
  return t
end

-- Returns dims given as a number or an array, as a list.
local function dimlist(dims, r)
  if type(dims) == "number" then dims = { dims } end
  local t = {}
  for i, d in ipairs(dims) do t[i] = dim(d, r) end
  return t
end

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- ---------------------------------------------------------------- tensors

local function binary(op)
  return function(a, b)
    if type(a) == "number" then a = lift(a, b) else b = lift(b, a) end
    return C.op(op, { a, b })
  end
end

T.__add = binary "add"
T.__sub = binary "sub"
T.__mul = binary "mul"
T.__div = binary "div"
T.__unm = function(a) return C.op("neg", { a }) end
for _, op in ipairs { "eq", "ne", "lt", "le", "gt", "ge" } do T[op] = binary(op) end
nn.maximum = binary "maximum"
nn.minimum = binary "minimum"

for _, op in ipairs { "relu", "relu6", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "abs" } do
  T[op] = function(x) return C.op(op, { x }) end
  nn[op] = T[op]
end
T.neg = T.__unm

-- Sizes and rank.
function T.dim(x) return #x.shape end
function T.size(x, d)
  local s = x.shape
  if d == nil then return s end
  return s[dim(d, #s) + 1]
end
function T.numel(x) return numel(x.shape) end
function T.dtype(x) return C.dtype(x) end

-- Reductions: x:sum(dims, keepdim) and friends.
for name, op in pairs { sum = "reduce_sum", mean = "reduce_mean", amax = "reduce_max", amin = "reduce_min" } do
  T[name] = function(x, dims, keepdim)
    local r = #x.shape
    if dims == nil then
      dims = {}
      for i = 1, r do dims[i] = i - 1 end
    end
    return C.op(op, { x }, { axes = dimlist(dims, r), keepdims = keepdim and 1 or 0 })
  end
end

function T.softmax(x, d) return C.op("softmax", { x }, { axis = dim(d, #x.shape) }) end
function T.log_softmax(x, d) return C.op("log_softmax", { x }, { axis = dim(d, #x.shape) }) end

-- Shapes.
function T.reshape(x, shape)
  local total, known, free = numel(x.shape), 1, nil
  local s = {}
  for i, d in ipairs(shape) do
    d = int(d, "reshape size")
    if d == -1 then
      if free then error("reshape: only one size may be -1", 2) end
      free = i
    else
      known = known * d
    end
    s[i] = d
  end
  if free then
    if known == 0 or total % known ~= 0 then
      error("reshape: cannot infer -1 for " .. total .. " elements", 2)
    end
    s[free] = total // known
  end
  return C.op("reshape", { x }, { shape = s })
end
T.view = T.reshape

function T.flatten(x, start_dim, end_dim)
  local s = x.shape
  local r = #s
  if r == 0 then return x:reshape { 1 } end
  local a, b = dim(start_dim or 0, r), dim(end_dim or -1, r)
  local out = {}
  for i = 0, a - 1 do out[#out + 1] = s[i + 1] end
  local n = 1
  for i = a, b do n = n * s[i + 1] end
  out[#out + 1] = n
  for i = b + 1, r - 1 do out[#out + 1] = s[i + 1] end
  return x:reshape(out)
end

function T.permute(x, perm)
  local r = #x.shape
  return C.op("transpose", { x }, { perm = dimlist(perm, r) })
end

function T.transpose(x, d0, d1)
  local r = #x.shape
  d0, d1 = dim(d0, r), dim(d1, r)
  local perm = {}
  for i = 1, r do perm[i] = i - 1 end
  perm[d0 + 1], perm[d1 + 1] = d1, d0
  return C.op("transpose", { x }, { perm = perm })
end

function T.unsqueeze(x, d)
  local s = x.shape
  d = dim(d, #s + 1)
  table.insert(s, d + 1, 1)
  return C.op("reshape", { x }, { shape = s })
end

function T.squeeze(x, d)
  local s = x.shape
  local out = {}
  if d == nil then
    for _, n in ipairs(s) do if n ~= 1 then out[#out + 1] = n end end
  else
    d = dim(d, #s)
    for i, n in ipairs(s) do if i - 1 ~= d or n ~= 1 then out[#out + 1] = n end end
  end
  return C.op("reshape", { x }, { shape = out })
end

function T.expand(x, shape)
  local s = x.shape
  local out = {}
  for i, n in ipairs(shape) do
    n = int(n, "expand size")
    local j = i - (#shape - #s)
    if n == -1 then
      if j < 1 then error("expand: -1 not allowed for a new dimension", 2) end
      n = s[j]
    end
    out[i] = n
  end
  return C.op("broadcast_to", { x }, { shape = out })
end

-- Pieces.
function T.narrow(x, d, start, length)
  local r = #x.shape
  d = dim(d, r)
  start, length = int(start, "narrow start"), int(length, "narrow length")
  return C.op("slice", { x }, { axis = d, start = start, ["end"] = start + length, step = 1 })
end

function T.chunk(x, n, d)
  local s = x.shape
  d = dim(d or 0, #s)
  local size = (s[d + 1] + n - 1) // n
  local out = {}
  local start = 0
  while start < s[d + 1] do
    local len = math.min(size, s[d + 1] - start)
    out[#out + 1] = x:narrow(d, start, len)
    start = start + len
  end
  return out
end

-- x:pad{before_last, after_last, before_prev, after_prev, ...} (F.pad order).
function T.pad(x, pads, value)
  local r = #x.shape
  if #pads % 2 ~= 0 or #pads > 2 * r then error("pad: expects pairs for at most " .. r .. " dimensions", 2) end
  local p = {}
  for i = 1, 2 * r do p[i] = 0 end
  for k = 1, #pads // 2 do
    local axis = r - k -- 0-based axis padded by pair k
    p[2 * axis + 1] = int(pads[2 * k - 1], "pad")
    p[2 * axis + 2] = int(pads[2 * k], "pad")
  end
  return C.op("pad", { x }, { pads = p, value = value or 0 })
end

function T.topk_mask(x, k, d) return C.op("topk_mask", { x }, { axis = dim(d, #x.shape), k = int(k, "k") }) end

function nn.cat(list, d)
  if type(list) ~= "table" or #list == 0 then error("cat: expects a non-empty array of tensors", 2) end
  return C.op("concat", list, { axis = dim(d or 0, #list[1].shape) })
end

function nn.where(c, a, b)
  if type(a) == "number" then a = lift(a, b) end
  if type(b) == "number" then b = lift(b, a) end
  return C.op("where", { c, a, b })
end

function nn.matmul(a, b) return C.op("matmul", { a, b }) end
nn.bmm = nn.matmul
T.matmul = nn.matmul

-- ------------------------------------------------------ functional layers

-- Returns bias b [C] reshaped to broadcast over axis 1 of a rank-r tensor.
local function channel_view(b, r)
  local s = { 1, b.shape[1] }
  for i = 3, r do s[i] = 1 end
  return b:reshape(s)
end

local function conv(op, sp)
  return function(x, w, o)
    o = o or {}
    local y = C.op(op, { x, w }, {
      stride = tuple(o.stride or 1, sp, "stride"),
      pad = tuple(o.padding or 0, sp, "padding"),
      dilation = tuple(o.dilation or 1, sp, "dilation"),
      groups = int(o.groups or 1, "groups"),
    })
    if is_tensor(o.bias) then y = y + channel_view(o.bias, sp + 2) end
    return y
  end
end
nn.conv2d = conv("conv2d", 2)
nn.conv1d = conv("conv1d", 1)

local function pool(op)
  return function(x, k, o)
    o = o or {}
    return C.op(op, { x }, {
      kernel = tuple(k, 2, "kernel"),
      stride = tuple(o.stride or k, 2, "stride"),
      pad = tuple(o.padding or 0, 2, "padding"),
    })
  end
end
nn.max_pool2d = pool "max_pool2d"
nn.avg_pool2d = pool "avg_pool2d"

function nn.linear(x, w, b)
  local y = C.op("matmul", { x, w }, { trans_b = 1 })
  if b ~= nil then y = y + b end
  return y
end

function nn.cross_entropy(logits, labels) return C.op("cross_entropy", { logits, labels }) end

C.set_tensor_methods(T)
nn.is_tensor = is_tensor

-- ---------------------------------------------------------- module system

local PARAM, BUFFER = {}, {} -- descriptor markers

-- nn.Parameter({dims}, init) / nn.Buffer({dims}, init): registered when
-- assigned to a module field; the init value is documentation only (weights
-- are loaded from files).
local function descriptor(kind)
  return function(shape, init)
    if type(shape) ~= "table" then error("expected a shape array", 2) end
    local s = {}
    for i, d in ipairs(shape) do s[i] = int(d, "parameter size") end
    local file, line = C.here()
    return { [kind] = true, shape = s, init = init, file = file, line = line }
  end
end
nn.Parameter = descriptor(PARAM)
nn.Buffer = descriptor(BUFFER)

local inst_mt = {}

-- Returns the module state of m, or nil if m is not a module instance.
local function state(m)
  if type(m) ~= "table" or getmetatable(m) ~= inst_mt then return nil end
  return rawget(m, "__module")
end
nn.is_module = function(m) return state(m) ~= nil end

inst_mt.__index = function(self, k)
  local s = rawget(self, "__module")
  local v = s.vals[k]
  if v == nil and math.type(k) == "integer" then v = s.vals[tostring(k)] end
  if v ~= nil then return v end
  return s.class[k]
end

inst_mt.__newindex = function(self, k, v)
  local s = rawget(self, "__module")
  if math.type(k) == "integer" then k = tostring(k) end
  local kind = state(v) and "child" or (type(v) == "table" and (v[PARAM] and "param" or v[BUFFER] and "buffer")) or nil
  local old = s.kind[k]
  if kind and s.path ~= nil and kind ~= "child" then
    error("cannot register " .. kind .. " '" .. tostring(k) .. "' after lowering started", 2)
  end
  if old and not kind and not (v == nil or (is_tensor(v) and old ~= "child")) then
    error("field '" .. tostring(k) .. "' is a registered " .. old .. "; assign a tensor or nil", 2)
  end
  if kind then
    if type(k) ~= "string" then error("module field names must be strings", 2) end
    if old == nil then s.order[#s.order + 1] = k end
    s.kind[k] = kind
  elseif v == nil and old then
    s.kind[k] = nil
    for i, n in ipairs(s.order) do
      if n == k then table.remove(s.order, i) break end
    end
  end
  s.vals[k] = v
end

inst_mt.__len = function(self)
  local n = 0
  for _, k in ipairs(rawget(self, "__module").order) do
    if rawget(self, "__module").kind[k] == "child" then n = n + 1 end
  end
  return n
end

inst_mt.__tostring = function(self)
  local s = rawget(self, "__module")
  return s.class.__name .. "(" .. (s.path or "?") .. ")"
end

local function restore(prev, ...)
  C.scope(prev)
  return ...
end

-- m(...) runs m:forward(...) in m's scope (wrapped in C so that a spec's
-- "return self.fc(x)" keeps the spec frame for op locations).
inst_mt.__call = C.wrap(function(self, ...)
  local s = rawget(self, "__module")
  local forward = s.class.forward
  if forward == nil then error(s.class.__name .. " has no forward", 2) end
  local prev = C.scope(s.path or "")
  if s.path == nil then C.scope(prev) end
  return restore(prev, forward(self, ...))
end)

local Base = {} -- methods every module has

-- Iterates over the children (name, module) in registration order.
function Base:named_children()
  local s = rawget(self, "__module")
  local i = 0
  return function()
    repeat
      i = i + 1
      local k = s.order[i]
      if k == nil then return nil end
      if s.kind[k] == "child" then return k, s.vals[k] end
    until false
  end
end

-- Iterates over the child modules in order.
function Base:each()
  local it = self:named_children()
  return function()
    local _, m = it()
    return m
  end
end

-- Appends module m as the next numbered child ("0", "1", ...).
function Base:add(m)
  if not state(m) then error("add: expected a module", 2) end
  self[tostring(#self)] = m
  return self
end

-- nn.Module "Name" [, Parent]: makes a module class; Class(...) makes an
-- instance and runs Class.init(instance, ...).
function nn.Module(name, parent)
  if type(name) ~= "string" then error("nn.Module: expected a class name", 2) end
  local cls = { __name = name }
  setmetatable(cls, {
    __index = parent or Base,
    __call = C.wrap(function(c, ...)
      local self = setmetatable({ __module = { class = c, vals = {}, kind = {}, order = {} } }, inst_mt)
      if c.init then c.init(self, ...) end
      return self
    end),
  })
  return cls
end

-- ---------------------------------------------------------- built-ins

nn.Sequential = nn.Module "Sequential"
function nn.Sequential:init(...)
  for i = 1, select("#", ...) do self:add((select(i, ...))) end
end
function nn.Sequential:forward(x)
  for m in self:each() do x = m(x) end
  return x
end

nn.ModuleList = nn.Module "ModuleList"
function nn.ModuleList:init(list)
  for _, m in ipairs(list or {}) do self:add(m) end
end

local function conv_layer(name, sp, fn)
  local M = nn.Module(name)
  function M:init(cin, cout, k, o)
    o = o or {}
    self.stride, self.padding = o.stride or 1, o.padding or 0
    self.dilation, self.groups = o.dilation or 1, int(o.groups or 1, "groups")
    if cin % self.groups ~= 0 then error(name .. ": in channels not divisible by groups", 3) end
    local shape = { int(cout, "out channels"), cin // self.groups }
    for _, kk in ipairs(tuple(k, sp, "kernel")) do shape[#shape + 1] = kk end
    self.weight = nn.Parameter(shape, "kaiming")
    if o.bias then self.bias = nn.Parameter({ cout }, "zeros") end
  end
  function M:forward(x)
    return fn(x, self.weight, { stride = self.stride, padding = self.padding, dilation = self.dilation,
      groups = self.groups, bias = self.bias })
  end
  return M
end
nn.Conv2d = conv_layer("Conv2d", 2, nn.conv2d)
nn.Conv1d = conv_layer("Conv1d", 1, nn.conv1d)

nn.Linear = nn.Module "Linear"
function nn.Linear:init(fin, fout, o)
  o = o or {}
  self.weight = nn.Parameter({ fout, fin }, "kaiming_uniform")
  if o.bias == nil or o.bias then self.bias = nn.Parameter({ fout }, "uniform") end
end
function nn.Linear:forward(x) return nn.linear(x, self.weight, self.bias) end

local function batchnorm_layer(name)
  local M = nn.Module(name)
  function M:init(c, o)
    o = o or {}
    self.eps, self.momentum = o.eps or 1e-5, o.momentum or 0.1
    self.weight = nn.Parameter({ c }, 1)
    self.bias = nn.Parameter({ c }, 0)
    self.running_mean = nn.Buffer({ c }, 0)
    self.running_var = nn.Buffer({ c }, 1)
  end
  function M:forward(x)
    if not C.training() then
      return C.op("batchnorm_eval", { x, self.weight, self.bias, self.running_mean, self.running_var },
        { eps = self.eps })
    end
    local y = C.op("batchnorm_train", { x, self.weight, self.bias }, { eps = self.eps })
    -- running statistics: biased batch variance made unbiased (n / (n - 1));
    -- batchnorm_stats gives [mean; biased variance] in one pass over x
    local s = x.shape
    local st = C.op("batchnorm_stats", { x })
    local mean = C.op("slice", { st }, { axis = 0, start = 0, ["end"] = 1 }):reshape { s[2] }
    local var = C.op("slice", { st }, { axis = 0, start = 1, ["end"] = 2 }):reshape { s[2] }
    local n = numel(s) // s[2]
    local m = self.momentum
    local unbias = n > 1 and n / (n - 1) or 1
    local rm = self.running_mean * (1 - m) + mean * m
    local rv = self.running_var * (1 - m) + var * (m * unbias)
    self.running_mean, self.running_var = rm, rv
    local path = rawget(self, "__module").path
    C.update(path .. ".running_mean", rm)
    C.update(path .. ".running_var", rv)
    return y
  end
  return M
end
nn.BatchNorm2d = batchnorm_layer "BatchNorm2d"
nn.BatchNorm1d = batchnorm_layer "BatchNorm1d"

local function activation(name, fn)
  local M = nn.Module(name)
  function M:forward(x) return fn(x) end
  return M
end
nn.ReLU = activation("ReLU", T.relu)
nn.ReLU6 = activation("ReLU6", T.relu6)
nn.Sigmoid = activation("Sigmoid", T.sigmoid)
nn.Tanh = activation("Tanh", T.tanh)
nn.Identity = activation("Identity", function(x) return x end)

local function pool_layer(name, fn)
  local M = nn.Module(name)
  function M:init(k, o)
    o = o or {}
    self.k, self.stride, self.padding = k, o.stride or k, o.padding or 0
  end
  function M:forward(x) return fn(x, self.k, { stride = self.stride, padding = self.padding }) end
  return M
end
nn.MaxPool2d = pool_layer("MaxPool2d", nn.max_pool2d)
nn.AvgPool2d = pool_layer("AvgPool2d", nn.avg_pool2d)

nn.AdaptiveAvgPool2d = nn.Module "AdaptiveAvgPool2d"
function nn.AdaptiveAvgPool2d:init(size)
  if size ~= 1 and not (type(size) == "table" and size[1] == 1 and size[2] == 1) then
    error("AdaptiveAvgPool2d: only output size 1 is supported", 3)
  end
end
function nn.AdaptiveAvgPool2d:forward(x) return x:mean({ 2, 3 }, true) end

nn.Flatten = nn.Module "Flatten"
function nn.Flatten:init(start_dim) self.start_dim = start_dim or 1 end
function nn.Flatten:forward(x) return x:flatten(self.start_dim) end

-- ---------------------------------------------------------- lowering

-- Gives every module its path and turns descriptors into source tensors,
-- in state_dict order: own parameters, own buffers, then children.
local function emit(m, path, seen)
  if seen[m] then return end
  seen[m] = true
  local s = rawget(m, "__module")
  s.path = path
  local prefix = path == "" and "" or path .. "."
  for _, want in ipairs { "param", "buffer" } do
    for _, k in ipairs(s.order) do
      if s.kind[k] == want then
        local dsc = s.vals[k]
        s.vals[k] = C.source(want, prefix .. k, dsc.shape, dsc.file, dsc.line, path)
      end
    end
  end
  for _, k in ipairs(s.order) do
    if s.kind[k] == "child" then emit(s.vals[k], prefix .. k, seen) end
  end
end

-- Public functions are C-wrapped like the tensor methods (op locations).
for k, v in pairs(nn) do
  if type(v) == "function" then nn[k] = C.wrap(v) end
end

-- Called by the front end: lowers module 'root' on tensor 'x'; returns the
-- logits tensor.
function nn._lower(root, x)
  if not state(root) then
    error("the spec must return an nn module (got " .. type(root) .. ")", 0)
  end
  emit(root, "", {})
  local y = root(x)
  if not is_tensor(y) then error("forward of the root module must return a tensor", 0) end
  return y
end

return nn
