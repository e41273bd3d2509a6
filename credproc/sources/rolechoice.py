"""When an identity provider offers several roles and the config names none (CAS's "Found multiple
roles", an OIDC roles claim): a numbered menu at a terminal, remembered in the cache so refreshes
do not ask again; without a terminal, the list and how to pin one with `arn = ...`."""

import time

from ..core.cache import Entry
from ..core.errors import ConfigError

REMEMBER_FOR = 30 * 86400


def _identity(role_name):
    return f"role-choice:{role_name}"


def remembered(ctx, role_name, idp_name):
    if ctx.force:  # `login --force`: choose again
        return None
    entry = ctx.store.get(_identity(role_name))
    if entry is not None and entry.fingerprint == ctx.config.idp_fingerprint(idp_name) and entry.expires_at > time.time():
        return entry.body.decode()
    return None


def forget(ctx, role_name):
    ctx.store.delete(_identity(role_name))


def pick(ctx, role_name, idp_name, offered, who):
    """The role to use among `offered` (not empty) when [role.NAME] names none: the only one, the
    remembered choice while it is still offered (a choice no longer offered is forgotten), else
    the menu (`who` starts its question: "<who> several AWS roles:")."""
    if len(offered) == 1:
        return offered[0]
    chosen = remembered(ctx, role_name, idp_name)
    if chosen in offered:
        return chosen
    if chosen:
        forget(ctx, role_name)
    return choose(ctx, role_name, idp_name, offered, who)


def choose(ctx, role_name, idp_name, roles, who, labels=None, pin=None):
    """labels: what the menu shows for each role (default: the role itself); pin(role): the
    config line(s) that would skip the question (default: arn = "...")."""
    pin = pin or (lambda r: f'arn = "{r}"')
    hint = f"pin one in [role.{role_name}], e.g. {pin(roles[0])}" if roles else None
    terminal = ctx.terminal
    if not terminal.available():
        raise ConfigError(f"{who} several roles and [role.{role_name}] names none: {', '.join(labels or roles)}", hint=hint)
    index = terminal.choose(f"{who} several AWS roles:", labels or roles, what="a role choice")
    chosen = roles[index]
    terminal.say(f"To skip this question, add to [role.{role_name}]:  {pin(chosen)}")
    now = int(time.time())
    ctx.store.put(_identity(role_name), Entry(now + REMEMBER_FOR, now + REMEMBER_FOR, ctx.config.digest,
                                              ctx.config.idp_fingerprint(idp_name), chosen.encode()))
    return chosen
