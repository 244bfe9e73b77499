-- A runaway loop: stopped by the instruction budget (even through pcall).
pcall(function() while true do end end)
while true do end
