"""The one factory: (config, role name) -> provider chain. No network calls; tests check the chain
it returns by type. What an identity source contributes comes from its module in credproc/idp/."""

from . import idp as idp_registry
from .config import default_session_name
from .providers.assume_role import AssumeRoleProvider
from .providers.cached import CachedProvider


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
        inner = idp_registry.source_for(idp).build_chain(ctx, idp, role, session_name, region, endpoint)
    return CachedProvider(inner, ctx, role_identity(role_name), cfg.fingerprint(role_name),
                          f"credentials for role {role_name!r}")
