"""Credential providers. Each has `retrieve() -> Credentials` and most take a source provider, so a
chain is built by nesting: static keys -> GetSessionToken (MFA) -> AssumeRole -> AssumeRole,
any link wrapped in CachedProvider. `credproc.chain.build` decides which chain a role gets."""
