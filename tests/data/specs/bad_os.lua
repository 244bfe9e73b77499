-- os is not available in the sandbox.
os.execute("touch /tmp/attnc_pwned")
