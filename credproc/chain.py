"""The one factory: (config, role name) -> provider chain. No network calls; tests check the chain
it returns by type."""

from .config import default_session_name
from .providers.assume_role import AssumeRoleProvider
from .providers.cached import CachedProvider
from .providers.session_token import SessionTokenProvider


def role_identity(name):
    return f"role:{name}"


def idp_identity(name):
    return f"idp:{name}"


def build(ctx, role_name):
    cfg = ctx.config
    role = cfg.role(role_name)
    region, endpoint = cfg.region_for(role), cfg.sts_endpoint_for(role)
    session_name = role.get("session_name") or default_session_name()
    if role.get("source_role"):
        source = build(ctx, role["source_role"])
        inner = AssumeRoleProvider(source, role, session_name, region, endpoint, f"role {role['source_role']}")
    else:
        idp = cfg.idps[role["idp"]]
        inner = _idp_chain(ctx, idp, role, session_name, region, endpoint)
    return CachedProvider(inner, ctx, role_identity(role_name), cfg.fingerprint(role_name),
                          f"credentials for role {role_name!r}")


def _idp_chain(ctx, idp, role, session_name, region, endpoint):
    cfg = ctx.config
    if idp["type"] == "iam":
        from .keysource import provider_for

        keys = provider_for(idp)  # reads nothing until STS must be called with the keys
        if idp.get("mfa_serial") or not role.get("arn"):
            # The MFA session belongs to the identity source, not the role: cached on its own so
            # every role over this idp shares one MFA prompt. It uses the idp's region/endpoint
            # (settings), so that sharing does not depend on per-role overrides.
            session = CachedProvider(
                SessionTokenProvider(keys, idp, cfg.settings.get("region") or "us-east-1",
                                     cfg.settings.get("sts_endpoint_url"), ctx.terminal),
                ctx, idp_identity(idp["name"]), cfg.idp_fingerprint(idp["name"]),
                f"an MFA session for idp {idp['name']!r}" if idp.get("mfa_serial") else f"a session for idp {idp['name']!r}")
            if not role.get("arn"):
                return session
            return AssumeRoleProvider(session, role, session_name, region, endpoint,
                                      f"the session of {keys.describe()}")
        return AssumeRoleProvider(keys, role, session_name, region, endpoint, keys.describe())
    if idp["type"] == "cas":
        from .providers.cas import CasProvider

        return CasProvider(ctx, idp, role)
    if idp["type"] == "oidc":
        from .providers.web_identity import OidcSession, WebIdentityProvider

        return WebIdentityProvider(ctx, OidcSession(ctx, idp), role, region, endpoint)
    raise NotImplementedError(idp["type"])  # config validation admits only implemented types
