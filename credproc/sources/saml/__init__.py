"""`type = "saml"`: a SAML 2.0 IdP (ECP or the IdP-initiated form flow), then AssumeRoleWithSAML.
source.py is what the registry loads; protocol.py the sign-on and the assertion's checks;
provider.py the cached sign-on and the STS call."""
