-- debug, dofile, loadfile and collectgarbage are not available either.
assert(debug == nil and dofile == nil and loadfile == nil and collectgarbage == nil and package == nil)
error("sandbox ok")
