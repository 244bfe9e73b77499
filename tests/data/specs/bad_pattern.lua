-- Nested repetitions backtrack polynomially: 5000^21 steps inside one call
-- to string.find unless its worst case is charged to the budget.
local subject = ("a"):rep(5000)
local pattern = ("a*"):rep(20) .. "b"
local i = string.find(subject, pattern)
