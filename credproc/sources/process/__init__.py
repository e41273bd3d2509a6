"""`type = "process"`: any credential_process helper, cached encrypted and shared. source.py is what
the registry loads; provider.py runs the helper and reads its document."""
