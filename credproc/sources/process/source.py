"""type = "process": any credential_process helper (okta-aws-cli, aws_signing_helper for IAM Roles
Anywhere, gimme-aws-creds, a company's own), run as the SDKs would run it but once per Expiration
for every caller at once: its credentials are cached encrypted as "idp:NAME" (shared by every role
over the idp, one run under the lock) and each role's as usual. Credentials without Expiration
are never cached: the helper then runs on every call, and `status` says so. A role with `arn`
assumes that role from the helper's credentials. The runner: provider.py."""

import os
import shlex

from ..base import NEVER, IdentitySource, Key, entry_state, entry_times, idp_identity
from ..checks import in_range


def _command_check(value):
    if not value.strip():
        return "must not be empty"
    if "\x00" in value:
        return "must not contain a NUL character"
    if os.name != "nt":  # botocore splits a credential_process line with shlex.split here
        try:
            shlex.split(value)
        except ValueError as e:
            return f"cannot be split as the SDKs split a credential_process line: {e}"
    return None


def _env_check(value):
    for name, item in value.items():
        if not isinstance(item, str):
            return f"{name}: values must be strings"
        if not name or "=" in name or "\x00" in name or "\x00" in item:
            return f"{name!r} is not an environment variable name (no '=', no NUL)"
    return None


def _no_expiration_identity(name):
    # as provider.no_expiration_identity (not imported here: this module must stay cheap to import)
    return f"process-noexp:{name}"


class ProcessSource(IdentitySource):
    type_name = "process"
    title = "any `credential_process` helper, cached"
    example_idp = {"command": "aws_signing_helper credential-process --certificate cert.pem --private-key key.pem"}
    # how long to wait and whether it may prompt do not shape the credentials
    unfingerprinted = {"timeout": NEVER, "interactive": NEVER}
    keys = (
        Key("command", str, required=True, check=_command_check,
            hint=' (the helper\'s credential_process line, e.g. "okta-aws-cli web --format process")',
            doc="The helper's `credential_process` line. It is split exactly as botocore splits one on this platform "
                "(`shlex.split` on Linux and macOS) and run without a shell: `~`, `$VAR`, pipes and `#` comments are "
                "not expanded. Its stdout must be the credential_process JSON document (`Version` 1, "
                "`AccessKeyId`, `SecretAccessKey`, optional `SessionToken`, `Expiration` and `AccountId`), checked "
                "as strictly as the SDKs check ours; it is never logged."),
        Key("env", dict, check=_env_check, default_doc="none (credproc's environment)",
            doc="Environment variables set for the helper on top of credproc's own, e.g. "
                "`{ OKTA_AWSCLI_PROFILE = \"corp\" }`. Never logged."),
        Key("timeout", int, default=60, check=in_range(1, 3600), type_doc="integer, 1..3600",
            doc="Seconds the helper may run (the Go SDK's limit for a `credential_process`); past it, it is "
                "stopped (SIGTERM, then SIGKILL, its whole process group) and the call fails with exit 9."),
        Key("interactive", bool, default=False,
            doc="`true`: the helper may prompt (a password, an MFA code, a browser sign-in): it gets the terminal "
                "as credproc's own prompts do (stdin, and its stderr shown there), and without a terminal a "
                "failure says to run `credproc login`. `false`: its stdin is `/dev/null` (end of input at once) "
                "and it runs in its own process group."),
    )

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        helper = self.helper_provider(ctx, idp)
        if not role.get("arn"):
            return helper
        from ..assume_role import AssumeRoleProvider

        return AssumeRoleProvider(helper, role, session_name, region, endpoint, f"the credentials of idp {idp['name']}")

    @staticmethod
    def helper_provider(ctx, idp):
        """The helper's credentials, cached as the idp's own entry: every role over the idp (and
        every concurrent caller) shares one run of the helper per Expiration."""
        from ..cached import CachedProvider
        from .provider import ProcessProvider

        cfg = ctx.config
        return CachedProvider(ProcessProvider(ctx, idp), ctx, idp_identity(idp["name"]),
                              cfg.idp_fingerprint(idp["name"]), f"the credentials of idp {idp['name']!r}")

    # -- status, logout, doctor -------------------------------------------------------------------
    def sessions(self, cfg, store, idp, now):
        name = idp["name"]
        fingerprint = cfg.idp_fingerprint(name)
        entry = store.get(idp_identity(name))
        expires_at, left = entry_times(entry, now)
        state = entry_state(entry, fingerprint, now)
        note = store.get(_no_expiration_identity(name)) if state != "valid" else None
        every_call = note is not None and note.fingerprint == fingerprint
        return [{"identity": idp_identity(name), "idp": name, "type": self.type_name, "kind": "helper credentials",
                 "state": state, "expires_at": expires_at, "seconds_left": left,
                 "refresh": "every call" if every_call else "before expiry"}]

    def session_columns(self, session):
        if session.get("refresh") == "every call":
            return session["kind"], "no Expiration from the helper: not cached, it runs on every call"
        return session["kind"], ""

    def logout(self, cfg, store, idp, say, remove, new_context):
        name = idp["name"]
        removed = remove(idp_identity(name), f"the credentials of idp {name!r}")
        remove(_no_expiration_identity(name), f"the notes of idp {name!r}")
        if removed:
            say(f"removed the helper credentials of idp {name}")
        return removed

    def doctor_checks(self, cfg, idp):
        import shutil

        from ...core.diagnose import fail, ok

        what = f"the command of idp {idp['name']}"
        try:
            argv = shlex.split(idp["command"], posix=os.name != "nt")
        except ValueError:
            argv = []
        if not argv:
            return [fail(what, "cannot be split into a program and its arguments")]
        found = shutil.which(argv[0])
        if not found:
            return [fail(what, f"{argv[0]} is not found or not executable",
                         fix=f"give the helper's full path in idp.{idp['name']}.command, or put it on PATH")]
        return [ok(f"{what} ({found})")]


SOURCE = ProcessSource()
