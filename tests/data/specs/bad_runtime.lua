-- A runtime error on line 3.
local t = nil
local y = t.field
