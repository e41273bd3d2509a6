"""type = "iam": long-lived IAM user keys from an AWS profile, the OS keyring or a password
manager (keysource.py), optionally an MFA session (GetSessionToken) shared by every role
over the idp, then AssumeRole."""

import re

from ..base import NEVER, IdentitySource, Key, entry_state, entry_times, idp_identity
from ..checks import MIN_DURATION, in_range, matches, secure_url

MFA_SERIAL_RE = re.compile(r"^(arn:aws[\w-]*:iam::\d{12}:(mfa|u2f)/[\w+=,.@/-]+|GAHT[0-9A-Z]+|[\w+=/:,.@-]{9,256})\Z")


def _session_endpoint(cfg):
    """The IAM (MFA) session is fetched with [settings]' region and endpoint, so that every role
    over the idp can share it whatever its own overrides."""
    region = cfg.settings.get("region") or "us-east-1"
    return region, cfg.settings.get("sts_endpoint_url")


class IamSource(IdentitySource):
    type_name = "iam"
    title = "long-lived IAM user keys"
    example_idp = {"profile": "corp-user"}
    init_keys = ("profile", "mfa_serial")
    # keys added with issue 10: at their defaults they leave the fingerprints as they were
    unfingerprinted = {"keys": "profile", "keys_command": None, "iam_endpoint_url": NEVER}
    holds_user_keys = True
    keys = (
        Key("keys", str, default="profile", choices=["profile", "keyring"],
            doc="Where the IAM user's keys are: a profile of the shared AWS files (plain text), or the OS keyring "
                "(macOS Keychain, Windows Credential Locker, Secret Service or KWallet; service `credproc`, one item "
                "per idp, put there by `credproc keys add` or `credproc keys import`)."),
        Key("keys_command", str, check=lambda v: None if v.strip() else "must not be empty",
            doc="Instead of `keys`: a password manager command that prints "
                "`{\"AccessKeyId\": \"...\", \"SecretAccessKey\": \"...\"}` (e.g. "
                "`op read op://Private/aws-corp/credentials`, `pass show aws/corp`). It runs without a shell, stdin "
                "closed, 120 s limit, like `mfa_command`."),
        Key("profile", str, default_doc='required with `keys = "profile"`',
            doc="AWS profile holding the IAM user's `aws_access_key_id`/`aws_secret_access_key`, in "
                "`~/.aws/credentials` (or `[profile X]` in `~/.aws/config`; `AWS_SHARED_CREDENTIALS_FILE` and "
                "`AWS_CONFIG_FILE` are honoured). It must hold static keys: a profile with `credential_process`, "
                "`role_arn`, `source_profile`, `sso_*` and similar is refused."),
        Key("mfa_serial", str, check=matches(MFA_SERIAL_RE, "an MFA device ARN or serial"),
            doc="MFA device ARN (`arn:aws:iam::123456789012:mfa/alice`) or serial. With it, credproc calls "
                "GetSessionToken with an MFA code once per session."),
        Key("mfa_command", str, default_doc="none (prompt)",
            doc="A command that prints the 6-digit code. It runs without a shell, stdin closed, 120 s limit, and "
                "its first output line is used. Requires `mfa_serial`."),
        Key("session_duration", int, default=43200, check=in_range(MIN_DURATION, 129600),
            type_doc="integer, 1200..129600",
            doc="Lifetime of the GetSessionToken (MFA) session. All roles over this idp share it."),
        Key("iam_endpoint_url", str, check=secure_url, type_doc="https URL (http only to loopback)",
            default_doc="the AWS endpoint", doc="IAM endpoint for `credproc keys rotate`."),
    )

    def cross_check(self, c, idp, table, where):
        by_profile = idp["keys"] == "profile" and not idp["keys_command"]
        if idp["keys_command"] and "keys" in table:
            c.add(f"{where}.keys", "set either keys or keys_command, not both")
        if by_profile and "profile" not in table:
            c.add(f"{where}.profile", "is required (the AWS profile in ~/.aws/credentials holding the long-lived keys)")
        if not by_profile and "profile" in table:
            c.add(f"{where}.profile", "has no effect unless keys = \"profile\" (remove it)")
        if idp["mfa_command"] and not idp["mfa_serial"]:
            c.add(f"{where}.mfa_command", "is set but mfa_serial is not (the code is sent with the MFA device serial)")

    @staticmethod
    def uses_session(cfg, idp):
        """An MFA session, or a role with no arn (its credentials ARE the GetSessionToken session)."""
        name = idp["name"]
        return bool(idp.get("mfa_serial")) or any(r.get("idp") == name and not r.get("arn") for r in cfg.roles.values())

    def build_chain(self, ctx, idp, role, session_name, region, endpoint):
        from ..assume_role import AssumeRoleProvider
        from .keysource import provider_for

        keys = provider_for(idp)  # reads nothing until STS must be called with the keys
        if idp.get("mfa_serial") or not role.get("arn"):
            session = self.session_provider(ctx, idp, keys)
            if not role.get("arn"):
                return session
            return AssumeRoleProvider(session, role, session_name, region, endpoint,
                                      f"the session of {keys.describe()}")
        return AssumeRoleProvider(keys, role, session_name, region, endpoint, keys.describe())

    @staticmethod
    def session_provider(ctx, idp, keys):
        """The idp's GetSessionToken (MFA) session over `keys`. It belongs to the identity source,
        not the role: cached on its own so every role over this idp (and `credproc keys rotate`)
        shares one MFA prompt. It uses the idp's region/endpoint (settings), so that sharing does
        not depend on per-role overrides."""
        from ..cached import CachedProvider
        from .session_token import SessionTokenProvider

        cfg = ctx.config
        return CachedProvider(
            SessionTokenProvider(keys, idp, *_session_endpoint(cfg), ctx.terminal),
            ctx, idp_identity(idp["name"]), cfg.idp_fingerprint(idp["name"]),
            f"an MFA session for idp {idp['name']!r}" if idp.get("mfa_serial") else f"a session for idp {idp['name']!r}")

    def sessions(self, cfg, store, idp, now):

        if not self.uses_session(cfg, idp):
            return []
        name = idp["name"]
        entry = store.get(idp_identity(name))
        expires_at, left = entry_times(entry, now)
        return [{"identity": idp_identity(name), "idp": name, "type": self.type_name,
                 "kind": "mfa session" if idp.get("mfa_serial") else "session",
                 "state": entry_state(entry, cfg.idp_fingerprint(name), now,
                                      present=entry is None and store.present(idp_identity(name))),
                 "expires_at": expires_at, "seconds_left": left}]

    def logout(self, cfg, store, idp, say, remove, new_context):

        kind = "MFA session" if idp.get("mfa_serial") else "session"
        if remove(idp_identity(idp["name"]), f"the {kind} of idp {idp['name']!r}"):
            say(f"removed the {kind} of idp {idp['name']}")
            return True
        return False

    def doctor_checks(self, cfg, idp):
        from ...core.diagnose import Check
        from .keysource import doctor_check

        return [Check(*doctor_check(idp))]  # where the keys live; plain text is a warning

    def idp_sts_endpoints(self, cfg, idp):
        if not self.uses_session(cfg, idp):
            return []
        region, url = _session_endpoint(cfg)
        return [url or f"https://sts.{region}.amazonaws.com"]

    def init_suggest(self, key_name, idp, settings):
        """mfa_serial: the IAM user's MFA device (GetCallerIdentity for the user's name, then
        ListMFADevices, with the profile's keys), when the user is allowed to list it."""
        if key_name != "mfa_serial" or not idp.get("profile"):
            return None
        try:
            import botocore.config

            from ...core.sts import botocore_session
            from .rotation import iam_client
            from .static_keys import StaticKeysProvider

            keys = StaticKeysProvider(idp["profile"], "init").retrieve()
            region = settings.get("region") or "us-east-1"
            sts = botocore_session().create_client(
                "sts", region_name=region, endpoint_url=settings.get("sts_endpoint_url"),
                config=botocore.config.Config(connect_timeout=5, read_timeout=5, retries={"total_max_attempts": 1}),
                aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key)
            arn = sts.get_caller_identity()["Arn"]
            if ":user/" not in arn:
                return None
            user = arn.rsplit("/", 1)[1]
            devices = iam_client(keys, idp.get("iam_endpoint_url")).list_mfa_devices(UserName=user).get("MFADevices") or []
        except Exception:  # noqa: BLE001 - no keys yet, no permission, no network: nothing to suggest
            return None
        serials = [d.get("SerialNumber") for d in devices if isinstance(d.get("SerialNumber"), str)]
        return serials[0] if len(serials) >= 1 and MFA_SERIAL_RE.match(serials[0]) else None

    def adopt_profile(self, name, profile, aws):
        """role_arn + source_profile (or a profile that is its own source) over static keys, with
        the profile's mfa_serial: the IAM user's keys, an MFA session when mfa_serial is set."""
        holder = profile.get("source_profile")
        if not profile.get("role_arn") or not holder or profile.get("credential_source"):
            return None
        if not aws.has_static_keys(holder):
            return None  # a chain over another role profile (the command's part), or nothing usable
        mfa = profile.get("mfa_serial")
        if mfa and not MFA_SERIAL_RE.match(mfa):
            return f"mfa_serial {mfa!r} is not an MFA device ARN or serial"
        idp = {"profile": holder}
        if mfa:
            idp["mfa_serial"] = mfa
        return {"key": (self.type_name, holder, mfa), "idp_name": holder, "idp": idp, "role": {},
                "keys_profile": holder}

    def console_refusal(self, cfg, role, idp):
        if role.get("arn"):
            return None
        from ...core.errors import ConfigError

        name = role["name"]
        return ConfigError(f"role {name!r} has no arn: its credentials are a GetSessionToken session, which cannot "
                           "sign in to the console",
                           hint=f"add to [role.{name}] the arn of a role to assume, e.g. arn = \"arn:aws:iam::123456789012:role/Admin\"")


SOURCE = IamSource()
