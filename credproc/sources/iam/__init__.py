"""`type = "iam"`: IAM user keys (a profile, the OS keyring or a keys_command), GetSessionToken with
MFA, AssumeRole, and key rotation. source.py is what the registry loads."""
