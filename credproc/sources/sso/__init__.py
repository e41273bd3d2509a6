"""`type = "sso"`: AWS IAM Identity Center (device and browser sign-in, GetRoleCredentials), with
the AWS CLI's token cache read, shared or left alone. source.py is what the registry loads;
protocol.py the sign-in and the portal; provider.py a role's credentials."""
