-- io is not available in the sandbox.
local f = io.open("/etc/passwd")
