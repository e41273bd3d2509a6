"""`type = "oidc"`: an OpenID Connect provider (device, browser and password flows), then
AssumeRoleWithWebIdentity. source.py is what the registry loads; protocol.py is the OIDC client and
token validation; provider.py the sign-in session and the STS call."""
