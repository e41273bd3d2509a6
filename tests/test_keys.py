"""Issue 10, unit level: where an iam idp's keys come from, the keyring-wrapped cache key, rotation
with a failure at each step, and the file edits of `keys import`. Fakes at the seams (an in-memory
keyring backend, a fake IAM); the real Secret Service and moto are in tests/integration/test_keyring.py."""

import json
import os
import stat
import sys

import pytest

from credproc import config
from credproc.core import cache, kernkey, keywrap, oskeyring
from credproc.core.credentials import Credentials
from credproc.core.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConfigError,
    KeyringUnavailable,
    ServiceError,
    UsageError,
)
from credproc.core.store import EncryptedFileCache
from credproc.sources.iam import keysource
from credproc.sources.iam.rotation import Rotation, user_name

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1"


class MemoryKeyring:
    """Stands in for the keyring library's backend: get/set/delete_password, with switchable failure."""

    name = "memory"

    def __init__(self):
        self.items = {}
        self.fail = None  # an exception to raise from every call

    def _check(self):
        if self.fail:
            raise self.fail

    def get_password(self, service, user):
        self._check()
        return self.items.get((service, user))

    def set_password(self, service, user, secret):
        self._check()
        self.items[(service, user)] = secret

    def delete_password(self, service, user):
        self._check()
        del self.items[(service, user)]


@pytest.fixture
def kr(monkeypatch):
    k = MemoryKeyring()
    monkeypatch.setattr(oskeyring, "_backend", k)
    return k


def parse(text):
    return config.parse("c.toml", text.encode())


# -- configuration ------------------------------------------------------------------------------
def test_keys_default_to_the_profile_and_the_other_modes_need_no_profile():
    cfg = parse('[idp.a]\ntype = "iam"\nprofile = "p"\n[idp.b]\ntype = "iam"\nkeys = "keyring"\n'
                '[idp.c]\ntype = "iam"\nkeys_command = "pass show aws/corp"\n')
    assert [keysource.mode(cfg.idps[n]) for n in "abc"] == ["profile", "keyring", "command"]


@pytest.mark.parametrize("table, where", [
    ('keys = "keyring"\nkeys_command = "x"', "idp.a.keys: set either keys or keys_command"),
    ('keys = "keyring"\nprofile = "p"', "idp.a.profile: has no effect unless keys"),
    ('keys = "vault"', "idp.a.keys: must be one of 'profile', 'keyring'"),
    ('keys = "profile"', "idp.a.profile: is required"),
    ('keys_command = "  "', "idp.a.keys_command: must not be empty"),
])
def test_key_source_mistakes_are_config_errors(table, where):
    with pytest.raises(ConfigError) as e:
        parse(f'[idp.a]\ntype = "iam"\n{table}\n')
    assert where in str(e.value)


def test_cache_key_settings():
    assert parse("").settings["cache_key"] == "file"
    cfg = parse('[settings]\ncache_key = "keyring"\ncache_key_fallback = "file"\n')
    assert (cfg.settings["cache_key"], cfg.settings["cache_key_fallback"]) == ("keyring", "file")
    with pytest.raises(ConfigError, match="cache_key_fallback: has no effect"):
        parse('[settings]\ncache_key_fallback = "file"\n')


def test_existing_configs_keep_their_fingerprints_and_moving_the_keys_changes_them():
    base = '[idp.a]\ntype = "iam"\n{}\n[role.r]\nidp = "a"\narn = "arn:aws:iam::111111111111:role/R"\n'
    plain = parse(base.format('profile = "p"'))
    # the digest of the material as it was before these keys existed: old cache entries stay hits
    # (and before the console's browser keys, which shape no credentials)
    chain = [{k: v for k, v in role.items() if k not in ("browser", "browser_profile")} for role in plain.chain_of("r")]
    material = {"settings": {"region": None, "sts_endpoint_url": None}, "chain": chain,
                "idp": {"name": "a", "type": "iam", "profile": "p", "mfa_serial": None, "mfa_command": None,
                        "session_duration": 43200}}
    assert plain.fingerprint("r") == cache.digest(json.dumps(material, sort_keys=True, default=str).encode())
    assert parse(base.format('profile = "p"\nkeys = "profile"')).fingerprint("r") == plain.fingerprint("r")
    assert parse(base.format('keys = "keyring"')).fingerprint("r") != plain.fingerprint("r")


# -- where the keys come from ----------------------------------------------------------------------
def test_keyring_keys_read_only_when_retrieved(kr):
    p = keysource.provider_for({"name": "corp", "keys": "keyring", "keys_command": None})
    assert kr.items == {}  # building the provider reads nothing
    with pytest.raises(ConfigError, match="credproc keys add --idp corp"):
        p.retrieve()
    keysource.store_in_keyring("corp", Credentials("AKIAIOSFODNN7EXAMPLE", SECRET))
    assert json.loads(kr.items[("credproc", "corp")]) == {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": SECRET}
    got = p.retrieve()
    assert (got.access_key_id, got.secret_access_key, got.session_token) == ("AKIAIOSFODNN7EXAMPLE", SECRET, None)


@pytest.mark.parametrize("text, problem", [
    ("not json " + SECRET, "is not a JSON object"),
    (json.dumps([SECRET]), "is not a JSON object"),
    (json.dumps({"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"}), "has no SecretAccessKey"),
    (json.dumps({"AccessKeyId": "akia-lower", "SecretAccessKey": SECRET}), "is not an access key id"),
])
def test_bad_keys_are_reported_without_quoting_them(text, problem):
    with pytest.raises(AuthenticationFailed) as e:
        keysource.parse_keys(text, "what keys_command printed")
    assert problem in str(e.value) and SECRET not in str(e.value)


def fake_password_manager(tmp_path, output, code=0):
    script = tmp_path / "pm.py"
    script.write_text(f"import sys\nsys.stdout.write({output!r})\nsys.stderr.write('pm: ok\\n')\nsys.exit({code})\n")
    return f"{sys.executable} {script}"


def test_keys_command_output_over_several_lines(tmp_path):
    out = json.dumps({"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": SECRET}, indent=2)  # op read prints this
    p = keysource.provider_for({"name": "corp", "keys": "profile", "keys_command": fake_password_manager(tmp_path, out)})
    assert p.retrieve().secret_access_key == SECRET


def test_a_failing_keys_command_names_itself_not_the_secret(tmp_path):
    p = keysource.CommandKeysProvider("corp", fake_password_manager(tmp_path, SECRET, code=1))
    with pytest.raises(AuthenticationFailed) as e:
        p.retrieve()
    assert "idp.corp.keys_command" in str(e.value) and "exit code 1" in str(e.value) and SECRET not in str(e.value)


def test_a_plaintext_keyring_backend_is_no_keyring(monkeypatch):
    import keyring

    class PlaintextKeyring:  # what keyrings.alt.file would give: a file in the home directory
        pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    monkeypatch.setattr(oskeyring, "_backend", None)
    monkeypatch.setattr(keyring, "get_keyring", lambda: PlaintextKeyring())
    with pytest.raises(KeyringUnavailable, match="no OS keyring is available here"):
        oskeyring.get("corp", "reading")


def test_a_locked_keyring_says_so(kr):
    class LockedException(Exception):
        pass

    kr.fail = LockedException("Failed to unlock the collection!")
    with pytest.raises(KeyringUnavailable, match="locked") as e:
        keysource.KeyringKeysProvider("corp").retrieve()
    assert e.value.exit_code == 13


# -- the keyring-wrapped cache key ------------------------------------------------------------------
@pytest.fixture
def dirs(tmp_path):
    return str(tmp_path / "cache"), str(tmp_path / "data" / "cache.key")


def entry():
    return cache.Entry(2**31, 2**31 - 1, "d", "f", b'{"Version":1}')


def test_keyring_mode_keeps_only_a_wrapped_key_on_disk(kr, dirs):
    store = EncryptedFileCache(*dirs, key_mode="keyring")
    store.put("role:r", entry())
    blob = open(dirs[1], "rb").read()
    assert keywrap.is_wrapped(blob) and store.key() not in blob
    assert stat.S_IMODE(os.stat(dirs[1]).st_mode) == 0o600
    assert ("credproc", oskeyring.CACHE_KEY_ITEM) in kr.items
    # another process: the kernel keyring (when keyctl works here) or the OS keyring unwraps it
    assert EncryptedFileCache(*dirs).get("role:r").body == b'{"Version":1}'
    kernkey.remove(keywrap.kernel_description(blob))
    assert keywrap.unwrap_fast(blob) is None
    assert EncryptedFileCache(*dirs, key_mode="keyring").get("role:r").body == b'{"Version":1}'
    if kernkey.available():
        assert keywrap.unwrap_fast(blob) == store.key()  # put back for the next hits, with a timeout
    kernkey.remove(keywrap.kernel_description(blob))


def test_without_the_wrapping_key_the_file_decrypts_nothing(kr, dirs):
    store = EncryptedFileCache(*dirs, key_mode="keyring")
    store.put("role:r", entry())
    blob = open(dirs[1], "rb").read()
    kernkey.remove(keywrap.kernel_description(blob))
    del kr.items[("credproc", oskeyring.CACHE_KEY_ITEM)]  # e.g. the home directory copied to another machine
    before = os.listdir(dirs[0])
    fresh = EncryptedFileCache(*dirs, key_mode="keyring")
    assert fresh.get("role:r") is None
    fresh.put("role:r", entry())  # a new cache under a new key; the old entry is gone
    after = os.listdir(dirs[0])
    assert open(dirs[1], "rb").read() != blob and len(after) == 1 and after != before
    kernkey.remove(keywrap.kernel_description(open(dirs[1], "rb").read()))


def test_switching_cache_key_replaces_the_key_and_drops_old_entries(kr, dirs):
    plain = EncryptedFileCache(*dirs, key_mode="file")
    plain.put("role:r", entry())
    old_key = plain.key()
    wrapped = EncryptedFileCache(*dirs, key_mode="keyring")
    assert wrapped.get("role:r") is None  # reading never converts
    wrapped.put("role:x", entry())
    blob = open(dirs[1], "rb").read()
    assert keywrap.is_wrapped(blob) and old_key not in blob and wrapped.key() != old_key
    assert EncryptedFileCache(*dirs).get("role:r") is None  # the entry made under the old key was deleted
    back = EncryptedFileCache(*dirs, key_mode="file")
    back.put("role:y", entry())
    assert len(open(dirs[1], "rb").read()) == 32
    kernkey.remove(keywrap.kernel_description(blob))


def test_no_keyring_is_an_error_unless_a_fallback_is_configured(kr, dirs):
    kr.fail = type("NoKeyringError", (Exception,), {})("No recommended backend was available")
    with pytest.raises(KeyringUnavailable, match="no OS keyring is available here"):
        EncryptedFileCache(*dirs, key_mode="keyring").put("role:r", entry())
    assert not os.path.exists(dirs[1])
    fallback = EncryptedFileCache(*dirs, key_mode="keyring", key_fallback="file")
    fallback.put("role:r", entry())
    assert not os.path.exists(dirs[1])  # the wrapped key's place is left alone
    assert len(open(os.path.join(os.path.dirname(dirs[1]), "cache-fallback.key"), "rb").read()) == 32


# -- rotation ----------------------------------------------------------------------------------------
ARN = "arn:aws:iam::123456789012:user/people/alice"


class FakeIam:
    def __init__(self, fail_at=None):
        self.keys = {"AKIAOLDOLDOLDOLD0001": "old-secret"}
        self.fail_at = fail_at
        self.n = 0

    def _maybe_fail(self, step):
        if self.fail_at == step:
            raise AccessDenied(f"IAM {step} denied")

    def list_access_keys(self, user):
        assert user == "alice"
        return [(k, "Active") for k in self.keys]

    def create_access_key(self, user):
        self._maybe_fail("create")
        self.n += 1
        key = Credentials(f"AKIANEWNEWNEWNEW000{self.n}", f"new-secret-{self.n}")
        self.keys[key.access_key_id] = key.secret_access_key
        return key

    def delete_access_key(self, user, key_id):
        self._maybe_fail("delete")
        del self.keys[key_id]


def make_rotation(iam, store, fail_at=None):
    def identity(creds):
        if fail_at == "verify" and creds.access_key_id != "AKIAOLDOLDOLDOLD0001":
            raise AuthenticationFailed("STS does not recognise the new key")
        if iam.keys.get(creds.access_key_id) != creds.secret_access_key:
            raise AuthenticationFailed("bad key")
        return ARN

    def keep(creds):
        if fail_at == "store" and creds.access_key_id != "AKIAOLDOLDOLDOLD0001":
            store["item"] = "half-written"
            raise KeyringUnavailable("the OS keyring failed while storing")
        store["item"] = creds

    t = [0]
    return Rotation(iam, identity, keep, lambda s: None, sleep=lambda s: t.__setitem__(0, t[0] + s),
                    clock=lambda: t[0]), identity


def test_user_name_from_arn():
    assert user_name(ARN) == "alice"
    assert user_name("arn:aws:sts::123456789012:assumed-role/R/s") is None


def test_rotation_replaces_the_key():
    iam, store = FakeIam(), {}
    rotation, identity = make_rotation(iam, store)
    new = rotation.run(Credentials("AKIAOLDOLDOLDOLD0001", "old-secret"))
    assert list(iam.keys) == [new.access_key_id] and store["item"] == new and identity(store["item"]) == ARN


@pytest.mark.parametrize("step", ["create", "verify", "store", "delete"])
def test_a_failure_at_each_step_leaves_a_working_key_stored(step):
    old = Credentials("AKIAOLDOLDOLDOLD0001", "old-secret")
    iam, store = FakeIam(fail_at=step if step in ("create", "delete") else None), {"item": old}
    rotation, identity = make_rotation(iam, store, fail_at=step)
    with pytest.raises((AccessDenied, AuthenticationFailed, KeyringUnavailable)) as e:
        rotation.run(old)
    assert identity(store["item"]) == ARN  # whatever is stored works
    if step == "delete":
        assert store["item"] != old and "is stored and works" in e.value.message
        assert "aws iam delete-access-key --user-name alice --access-key-id AKIAOLDOLDOLDOLD0001" in e.value.hint
    else:
        assert store["item"] == old and list(iam.keys) == ["AKIAOLDOLDOLDOLD0001"]  # as before
        if step != "create":
            assert "rotation undone" in e.value.message


def test_rotation_needs_a_free_key_slot():
    iam = FakeIam()
    iam.keys["AKIAOTHEROTHEROTHE1"] = "x"
    rotation, _ = make_rotation(iam, {})
    with pytest.raises(UsageError, match="already has a second access key") as e:
        rotation.run(Credentials("AKIAOLDOLDOLDOLD0001", "old-secret"))
    assert "delete-access-key --user-name alice --access-key-id AKIAOTHEROTHEROTHE1" in e.value.hint


def test_rotation_waits_for_iam_to_propagate_the_new_key():
    iam, store = FakeIam(), {}
    rotation, identity = make_rotation(iam, store)
    tries = []

    def slow_identity(creds):
        if creds.access_key_id != "AKIAOLDOLDOLDOLD0001" and len(tries) < 3:
            tries.append(1)
            raise AuthenticationFailed("not yet")
        return identity(creds)

    rotation.identity = slow_identity
    new = rotation.run(Credentials("AKIAOLDOLDOLDOLD0001", "old-secret"))
    assert len(tries) == 3 and store["item"] == new


# -- the file edits of keys import --------------------------------------------------------------------
def test_switch_to_keyring_keeps_everything_else(tmp_path):
    path = tmp_path / "c.toml"
    text = ('# my config\n[settings]\nregion = "eu-west-1"\n\n[idp.corp]  # work\ntype = "iam"\nprofile = "corp-user"\n'
            'mfa_serial = "arn:aws:iam::123456789012:mfa/alice"\n\n[role.r]\nidp = "corp"\n')
    path.write_text(text)
    os.chmod(path, 0o640)
    from credproc.commands.keyfiles import switch_to_keyring

    backup = switch_to_keyring(str(path), "corp")
    new = path.read_text()
    assert new == text.replace('profile = "corp-user"\n',
                               'keys = "keyring"\n# profile = "corp-user"  (replaced by credproc keys import)\n')
    assert open(backup).read() == text and stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert config.load(str(path)).idps["corp"]["keys"] == "keyring"


def test_remove_keys_leaves_other_profiles_and_keeps_no_secret_in_the_backup(tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    text = (f"[default]\naws_access_key_id = AKIADEFAULTDEFAULT01\naws_secret_access_key = keepme\n\n"
            f"[corp-user]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n\n"
            f"[other]\nregion = eu-west-1\n")
    creds.write_text(text)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    from credproc.commands.keyfiles import remove_keys

    [(path, backup)] = remove_keys("corp-user", "AKIAIOSFODNN7EXAMPLE")
    assert creds.read_text() == text.replace(
        f"[corp-user]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n\n", "")
    b = open(backup).read()
    assert SECRET not in b and "AKIAIOSFODNN7EXAMPLE" in b and "moved to the OS keyring" in b and "keepme" in b
    assert remove_keys("corp-user", "AKIAIOSFODNN7EXAMPLE") == []  # nothing left to remove


def test_remove_keys_only_for_the_key_that_was_moved(tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    creds.write_text("[corp-user]\naws_access_key_id = AKIASOMETHINGELSE001\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    from credproc.commands.keyfiles import remove_keys

    assert remove_keys("corp-user", "AKIAIOSFODNN7EXAMPLE") == []
    assert "AKIASOMETHINGELSE001" in creds.read_text()


def test_service_error_is_not_swallowed_by_rotation_undo():
    # an unexpected error during verification still undoes the rotation and propagates unchanged
    iam, store = FakeIam(), {}
    rotation, identity = make_rotation(iam, store)
    rotation.identity = lambda c: ARN if c.access_key_id == "AKIAOLDOLDOLDOLD0001" else (_ for _ in ()).throw(
        ServiceError("STS GetCallerIdentity failed: InternalFailure"))
    with pytest.raises(ServiceError, match="rotation undone"):
        rotation.run(Credentials("AKIAOLDOLDOLDOLD0001", "old-secret"))
    assert list(iam.keys) == ["AKIAOLDOLDOLDOLD0001"]


# -- the hit path with a wrapped key -------------------------------------------------------------------
def need_kernel_keyring():
    """The kernel keyring is a peer like the others: a skip here, a failure on CI."""
    if not kernkey.available():
        reason = "keyctl is not available here (not Linux, or blocked by a seccomp filter)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def test_a_cache_hit_with_a_wrapped_key_imports_no_keyring_library(kr, tmp_path, monkeypatch):
    """The wrapped key is unwrapped from the kernel keyring: no keyring, D-Bus or JSON on the hit path."""
    import subprocess

    need_kernel_keyring()

    from credproc.core import paths

    for var, sub in (("XDG_CACHE_HOME", "c"), ("XDG_DATA_HOME", "d"), ("XDG_CONFIG_HOME", "g")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    cfg = tmp_path / "credproc.toml"
    cfg.write_bytes(b'[settings]\ncache_key = "keyring"\n')
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    from credproc import app

    store = app.store(config.load(str(cfg)))  # as the full path stores entries (key mode, identity)
    now = cache.now()
    store.put("role:admin", cache.Entry(now + 3600, now + 600, cache.digest(cfg.read_bytes()), "fp", b'{"Version":1}\n'))
    blob = open(paths.key_file(), "rb").read()
    try:
        code = ("import sys; from credproc._entry import main; rc = main(['--role', 'admin']); "
                "heavy = [m for m in ('json', 'argparse', 'keyring', 'secretstorage', 'jeepney', 'boto3', "
                "'credproc.core.oskeyring', 'credproc.cli', 'credproc.config') if m in sys.modules]; "
                "sys.stderr.write(repr((rc, heavy)))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, env=os.environ.copy())
        assert r.stdout == b'{"Version":1}\n', r.stderr
        assert r.stderr.decode() == "(0, [])"
        kernkey.remove(keywrap.kernel_description(blob))  # without the kernel's copy: the full path decides
        r = subprocess.run([sys.executable, "-c", "import sys; from credproc import fastpath; "
                            "sys.exit(0 if fastpath.try_serve(['--role', 'admin']) is False else 1)"],
                           capture_output=True, env=os.environ.copy())
        assert r.returncode == 0 and r.stdout == b""
    finally:
        kernkey.remove(keywrap.kernel_description(blob))


def test_the_fallback_cache_is_served_by_the_fast_path(kr, tmp_path, monkeypatch):
    """cache_key_fallback = "file" with no keyring: hits are still fast (and need the same config bytes)."""
    from credproc import fastpath
    from credproc.core import paths

    for var, sub in (("XDG_CACHE_HOME", "c"), ("XDG_DATA_HOME", "d"), ("XDG_CONFIG_HOME", "g")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("CREDPROC_DEBUG", raising=False)
    cfg = tmp_path / "credproc.toml"
    cfg.write_bytes(b'[settings]\ncache_key = "keyring"\ncache_key_fallback = "file"\n')
    monkeypatch.setenv("CREDPROC_CONFIG", str(cfg))
    kr.fail = type("NoKeyringError", (Exception,), {})("No recommended backend was available")
    from credproc import app

    store = app.store(config.load(str(cfg)))  # as the full path stores entries (key mode, identity)
    now = cache.now()
    store.put("role:admin", cache.Entry(now + 3600, now + 600, cache.digest(cfg.read_bytes()), "fp", b'{"Version":1}\n'))
    assert not os.path.exists(paths.key_file())

    class Out:
        buffer = __import__("io").BytesIO()

    monkeypatch.setattr(sys, "stdout", Out)
    assert fastpath.try_serve(["--role", "admin"]) is True and Out.buffer.getvalue() == b'{"Version":1}\n'
    cfg.write_bytes(b'[settings]\ncache_key = "keyring"\n')  # the fallback is no longer configured
    assert fastpath.try_serve(["--role", "admin"]) is False


def test_put_wins_over_a_stale_item_with_the_same_name(monkeypatch):
    """A Secret Service can hold two items for one service/username (one made with secret-tool
    lacks the keyring library's extra attribute); the lookup may find either. Regression: rotation
    once stored the new key and read the old one back."""

    class TwoItems(MemoryKeyring):
        def __init__(self):
            super().__init__()
            self.list = [(("credproc", "corp"), "stale")]  # made by another tool; set_password never replaces it

        def get_password(self, service, user):
            return next((v for k, v in self.list if k == (service, user)), None)

        def set_password(self, service, user, secret):  # replaces only its own item (the one after the stale one)
            own = [i for i, (k, v) in enumerate(self.list) if k == (service, user) and v != "stale"]
            for i in reversed(own):
                del self.list[i]
            self.list.append(((service, user), secret))

        def delete_password(self, service, user):
            del self.list[[k for k, _ in self.list].index((service, user))]

    k = TwoItems()
    monkeypatch.setattr(oskeyring, "_backend", k)
    oskeyring.put("corp", "fresh", "storing")
    assert oskeyring.get("corp", "reading") == "fresh"
    assert oskeyring.delete("corp", "deleting") is True and k.list == []


def test_completion_offers_the_keys_actions_and_their_options(capsys):
    from credproc.cli import main

    assert main(["completion", "--options", "keys"]) == 0
    words = capsys.readouterr().out.split()
    assert {"add", "import", "rotate", "remove", "--idp", "--from-profile", "--yes"} <= set(words)


def test_remove_keys_from_a_profile_in_the_config_file(tmp_path, monkeypatch):
    config_file = tmp_path / "config"
    text = (f"[profile corp-user]\nregion = eu-west-1\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
            f"aws_secret_access_key = {SECRET}\n[profile other]\nregion = us-east-1\n")
    config_file.write_text(text)
    os.chmod(config_file, 0o644)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))  # absent
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    from credproc.commands.keyfiles import remove_keys

    [(path, backup)] = remove_keys("corp-user", "AKIAIOSFODNN7EXAMPLE")
    assert config_file.read_text() == "[profile corp-user]\nregion = eu-west-1\n[profile other]\nregion = us-east-1\n"
    assert SECRET not in open(backup).read() and stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600  # never wider than the owner's


# -- issue 20 item 1: a keyring that stops answering mid-rotation -------------------------------------
class FaultyKeyring:
    """The keyring seen by a rotation: put (with its read-back) and load, with a fault injected at
    one point. `dead` makes every later call fail, as a Secret Service that restarted (D-Bus NoReply)."""

    def __init__(self, item, fault=None):
        self.item, self.fault, self.dead, self.puts = item, fault, False, 0

    def _alive(self):
        if self.dead:
            raise KeyringUnavailable("the OS keyring failed: NoReply")

    def put(self, creds):
        self._alive()
        self.puts += 1
        if self.puts == 1 and self.fault == "new-not-written":
            raise KeyringUnavailable("the OS keyring failed: NoReply")
        if self.puts == 1 and self.fault in ("new-written-then-dies", "new-written-read-back-fails"):
            self.item = creds
            self.dead = self.fault == "new-written-then-dies"
            raise KeyringUnavailable("the OS keyring failed: NoReply")
        if self.puts == 2 and self.fault == "restore-fails":
            self.dead = True
            raise KeyringUnavailable("the OS keyring failed: NoReply")
        self.item = creds

    def load(self):
        self._alive()
        return self.item


@pytest.mark.parametrize("fault", ["create", "verify", "new-not-written", "new-written-then-dies",
                                   "new-written-read-back-fails", "restore-fails", "delete-old"])
def test_item1_rotation_never_deletes_a_key_unless_a_working_one_is_verified_stored(fault):
    """Whatever fails (IAM, STS, the keyring before or after it wrote, or putting the old key back),
    the key the keyring holds afterwards is valid at IAM; a key is deleted at IAM only when a working
    key reads back from the keyring; 'rotation undone' is said only when the old key is stored again."""
    old = Credentials("AKIAOLDOLDOLDOLD0001", "old-secret")
    iam = FakeIam(fail_at={"create": "create", "delete-old": "delete"}.get(fault))
    keyring = FaultyKeyring(old, fault)
    said = []

    def identity(creds):
        if fault == "verify" and creds.access_key_id != old.access_key_id:
            raise AuthenticationFailed("STS does not recognise the new key")
        if iam.keys.get(creds.access_key_id) != creds.secret_access_key:
            raise AuthenticationFailed("bad key")
        return ARN

    def store(creds):
        keyring.put(creds)
        if fault == "restore-fails" and keyring.puts == 1:
            raise KeyringUnavailable("the OS keyring did not keep the keys (they do not read back)")

    t = [0]
    rotation = Rotation(iam, identity, store, said.append, sleep=lambda s: t.__setitem__(0, t[0] + s),
                        clock=lambda: t[0], load=keyring.load)
    try:
        rotation.run(old)
        error = None
    except (AccessDenied, AuthenticationFailed, KeyringUnavailable) as e:
        error = e
    held = keyring.item
    assert iam.keys.get(held.access_key_id) == held.secret_access_key, f"the keyring holds a deleted key ({fault})"
    if error is not None and "rotation undone" in error.message:
        assert keyring.load() == old and list(iam.keys) == [old.access_key_id]
    if fault in ("new-written-then-dies", "restore-fails"):
        assert len(iam.keys) == 2  # the store is unreachable: both keys kept at IAM
        assert "rotation undone" not in error.message and "both" in error.message
        assert "AKIAOLDOLDOLDOLD0001" in error.hint and "AKIANEWNEWNEWNEW0001" in error.hint
    assert not any("old-secret" in s or "new-secret" in s for s in said + [error.message if error else ""])


def test_item6_logout_all_with_a_keyring_key_makes_a_restored_home_useless(kr, dirs, tmp_path):
    """logout --all replaces the cache key: with cache_key = "keyring" the wrapping key in the OS
    keyring is replaced too, so a copy of the home directory from before (the old wrapped key file
    and the old entries) put back afterwards decrypts nothing, also not through the kernel keyring."""
    import shutil

    store = EncryptedFileCache(*dirs, key_mode="keyring")
    store.put("role:r", entry())
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "cache", backup / "cache")
    shutil.copytree(tmp_path / "data", backup / "data")
    old_wrapping = kr.items[("credproc", oskeyring.CACHE_KEY_ITEM)]
    assert store.rotate_key()  # what logout --all does
    assert kr.items[("credproc", oskeyring.CACHE_KEY_ITEM)] != old_wrapping
    shutil.rmtree(tmp_path / "cache")
    shutil.rmtree(tmp_path / "data")
    shutil.copytree(backup / "cache", tmp_path / "cache")  # the home directory restored from before
    shutil.copytree(backup / "data", tmp_path / "data")
    blob = open(dirs[1], "rb").read()
    assert keywrap.unwrap_fast(blob) is None  # the kernel keyring's copy of the old key is gone
    assert EncryptedFileCache(*dirs, key_mode="keyring").get("role:r") is None
    assert EncryptedFileCache(*dirs).get("role:r") is None
    kernkey.remove(keywrap.kernel_description(open(dirs[1], "rb").read()))


# -- issue 20, tests' strength -------------------------------------------------------------------------
def test_item21_rotation_refuses_a_new_key_of_another_iam_user():
    """The new key must belong to the same IAM user as the current one: a key STS says is someone
    else's is never stored, and is deleted again (the rotation is undone)."""
    old = Credentials("AKIAOLDOLDOLDOLD0001", "old-secret")
    iam, store = FakeIam(), {"item": old}
    rotation, identity = make_rotation(iam, store)
    rotation.identity = lambda c: ARN if c.access_key_id == old.access_key_id else \
        "arn:aws:iam::123456789012:user/mallory"
    with pytest.raises(AuthenticationFailed, match="mallory") as e:
        rotation.run(old)
    assert store["item"] == old and list(iam.keys) == [old.access_key_id] and "rotation undone" in e.value.message


def test_item22_the_keyring_read_back_compares_the_secret_not_only_the_key_id(kr):
    """A keyring that keeps an older secret under the same key id (a stale duplicate found first)
    does not count as storing the keys."""
    class StaleSecret(MemoryKeyring):
        def get_password(self, service, user):
            got = super().get_password(service, user)
            return got.replace("new-secret", "old-secret") if got else got

    stale = StaleSecret()
    oskeyring._backend = stale
    with pytest.raises(KeyringUnavailable, match="do not read back|did not keep"):
        keysource.store_in_keyring("corp", Credentials("AKIAIOSFODNN7EXAMPLE", "new-secret"))


def test_item24_deleting_a_keyring_item_removes_every_duplicate(kr):
    """A Secret Service can hold two items for one name (one made by secret-tool); delete removes
    both, not only the first one found."""
    class Duplicates(MemoryKeyring):
        def __init__(self):
            super().__init__()
            self.stack = {}

        def get_password(self, service, user):
            items = self.stack.get((service, user)) or []
            return items[0] if items else None

        def set_password(self, service, user, secret):
            self.stack.setdefault((service, user), []).append(secret)

        def delete_password(self, service, user):
            self.stack[(service, user)].pop(0)

    d = Duplicates()
    d.stack[("credproc", "corp")] = ["first", "second"]
    oskeyring._backend = d
    assert oskeyring.delete("corp", "deleting") is True
    assert oskeyring.get("corp", "looking") is None and d.stack[("credproc", "corp")] == []


def test_item23_logout_all_drops_the_old_unwrapped_key_from_the_kernel_keyring(kr, dirs):
    """After rotate_key (logout --all) the kernel keyring no longer holds the old cache key, which
    would otherwise keep decrypting a restored copy of the old entries for up to an hour."""
    need_kernel_keyring()
    store = EncryptedFileCache(*dirs, key_mode="keyring")
    store.put("role:r", entry())
    old_blob = open(dirs[1], "rb").read()
    assert kernkey.read(keywrap.kernel_description(old_blob)) == store.key()  # kept there by the put
    assert store.rotate_key()
    assert kernkey.read(keywrap.kernel_description(old_blob)) is None
    kernkey.remove(keywrap.kernel_description(open(dirs[1], "rb").read()))
