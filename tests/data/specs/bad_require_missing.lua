-- require of a module that does not exist.
require "no_such_module"
