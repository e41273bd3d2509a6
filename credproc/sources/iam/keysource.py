"""Where an `iam` idp's long-lived IAM user keys come from: a profile of the shared AWS files
(`keys = "profile"`, the default), the OS keyring (`keys = "keyring"`), or a password manager
(`keys_command = "..."`).

Each is a provider whose retrieve() reads the keys only when called: the chain calls it only when
STS must be called with the keys (a refresh of the MFA session or of a role assumed straight from
the keys), never on a cache hit, so there is no keyring prompt or password-manager run per call.
"""

import json
import re

from ...core import oskeyring
from ...core.credentials import Credentials
from ...core.errors import AuthenticationFailed, ConfigError

KEY_ID_RE = re.compile(r"^[A-Z0-9]{16,128}\Z")


def mode(idp):
    """"profile", "keyring" or "command"."""
    if idp.get("keys_command"):
        return "command"
    return idp.get("keys") or "profile"


def provider_for(idp):
    m = mode(idp)
    if m == "keyring":
        return KeyringKeysProvider(idp["name"])
    if m == "command":
        return CommandKeysProvider(idp["name"], idp["keys_command"])
    from .static_keys import StaticKeysProvider

    return StaticKeysProvider(idp["profile"], idp["name"])


def parse_keys(text, what, hint=None):
    """Credentials from a JSON object with AccessKeyId and SecretAccessKey (SessionToken allowed).
    Nothing of the text is ever quoted back: it holds the secret."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise AuthenticationFailed(f"{what} is not a JSON object", hint=hint) from None
    if not isinstance(doc, dict):
        raise AuthenticationFailed(f"{what} is not a JSON object", hint=hint)
    key_id, secret, token = doc.get("AccessKeyId"), doc.get("SecretAccessKey"), doc.get("SessionToken")
    missing = [k for k, v in (("AccessKeyId", key_id), ("SecretAccessKey", secret)) if not isinstance(v, str) or not v]
    if missing:
        raise AuthenticationFailed(f"{what} has no {' and no '.join(missing)}", hint=hint)
    if not KEY_ID_RE.match(key_id.strip()):
        raise AuthenticationFailed(f"{what}: AccessKeyId is not an access key id (16+ capital letters and digits)",
                                   hint=hint)
    if token is not None and not isinstance(token, str):
        raise AuthenticationFailed(f"{what}: SessionToken is not a string", hint=hint)
    return Credentials(key_id.strip(), secret.strip(), (token or "").strip() or None)


def dump_keys(creds):
    """The JSON kept in the keyring (the same object a keys_command prints)."""
    return json.dumps({"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key})


class KeyringKeysProvider:
    def __init__(self, idp_name):
        self.idp_name = idp_name

    def describe(self):
        return f"the OS keyring (idp {self.idp_name})"

    def retrieve(self):
        text = oskeyring.get(self.idp_name, f"reading the keys of idp {self.idp_name}")
        if text is None:
            raise ConfigError(f"[idp.{self.idp_name}] keys = \"keyring\", but the OS keyring ({oskeyring.name()}) holds "
                              f"no keys for it (service {oskeyring.SERVICE!r}, item {self.idp_name!r})",
                              hint=f"run: credproc keys add --idp {self.idp_name}")
        return parse_keys(text, f"the keyring item for idp {self.idp_name}",
                          hint=f"store them again: credproc keys add --idp {self.idp_name}")


class CommandKeysProvider:
    def __init__(self, idp_name, command):
        self.idp_name = idp_name
        self.command = command

    def describe(self):
        return f"keys_command of idp {self.idp_name}"

    def retrieve(self):
        from ...core.prompt import run_secret_command

        key = f"idp.{self.idp_name}.keys_command"
        text = run_secret_command(self.command, "the IAM user's keys", key, whole_output=True)
        return parse_keys(text, f"what {key} printed",
                          hint='it must print {"AccessKeyId": "...", "SecretAccessKey": "..."}')


def store_in_keyring(idp_name, creds):
    """Store the keys and read them back: an item that does not read back is not kept as stored."""
    what = f"storing the keys of idp {idp_name}"
    oskeyring.put(idp_name, dump_keys(creds), what)
    back = oskeyring.get(idp_name, what)
    if back is None or parse_keys(back, "the stored keyring item").access_key_id != creds.access_key_id \
            or parse_keys(back, "the stored keyring item").secret_access_key != creds.secret_access_key:
        from ...core.errors import KeyringUnavailable

        raise KeyringUnavailable(f"the OS keyring did not keep the keys of idp {idp_name} (they do not read back)")


def load_from_keyring(idp_name):
    """The keys the keyring holds for this idp now, or None; raises when the keyring cannot be read."""
    text = oskeyring.get(idp_name, f"reading back the keys of idp {idp_name}")
    return None if text is None else parse_keys(text, "the stored keyring item")


def where(idp):
    """Where this idp's keys live, for doctor and messages (no secret)."""
    m = mode(idp)
    if m == "keyring":
        return f"the OS keyring (service {oskeyring.SERVICE!r}, item {idp['name']!r})"
    if m == "command":
        import shlex

        try:
            prog = shlex.split(idp["keys_command"])[0]
        except (ValueError, IndexError):
            prog = "?"
        return f"a password manager (keys_command: {prog})"
    return f"profile {idp['profile']!r} of the shared AWS files (plain text)"


def doctor_check(idp):
    """(status, what, problem, fix) for `credproc doctor`: where the keys live, and whether they can
    be read there. Plain-text keys are a warning naming the command that moves them. A keys_command
    is not run (it may ask for a fingerprint or a master password): only found on PATH."""
    import shlex
    import shutil

    from ...core.errors import CredprocError

    name, m = idp["name"], mode(idp)
    if m == "command":
        try:
            prog = shlex.split(idp["keys_command"])[0]
        except (ValueError, IndexError):
            return "fail", f"idp {name}: keys_command", "cannot be parsed", "fix the quoting"
        if not shutil.which(prog):
            return "fail", f"idp {name}: keys_command", f"{prog} not found", "install it, or use its absolute path"
        return "ok", f"idp {name}: keys from a password manager ({prog}; not run by doctor)", None, None
    try:
        provider_for(idp).retrieve()  # reads the keys; never shown
    except CredprocError as e:
        return "fail", f"idp {name}: keys in {where(idp)}", e.message, e.hint
    if m == "keyring":
        return "ok", f"idp {name}: keys in the OS keyring ({oskeyring.name()})", None, None
    return ("warn", f"idp {name}: keys in plain text in profile {idp['profile']}",
            "anyone with a copy of your home directory (a backup, a synced folder) can use them",
            f"move them to the OS keyring: credproc keys import --idp {name} --from-profile {idp['profile']}")
