"""`type = "cas"`: an Apereo CAS server's awsSts endpoint (password, Duo). source.py is what the
registry loads; provider.py speaks the protocol."""
