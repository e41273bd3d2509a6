"""`type = "login"`: the AWS console sign-in of `aws login` (login for AWS local development), with
the AWS CLI's login cache read, shared or left alone. source.py is what the registry loads;
protocol.py the sign-in, the refresh and the CLI's file; provider.py the credentials of a role."""
