-- require may not leave the models folder.
require "../../etc/passwd"
