-- A syntax error on line 4.
local nn = require "nn"
local function f(x)
  return x +
end
