-- A spec must return a module.
input_shape { 3, 8, 8 }
return 42
