"""The one factory: (config, role name) -> provider chain. No network calls; tests check the chain
it returns by type. What an identity source contributes comes from its package in credproc/sources/."""

from . import sources as idp_registry
from .core.sts import default_session_name
from .sources.assume_role import AssumeRoleProvider
from .sources.base import role_identity
from .sources.cached import CachedProvider


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
