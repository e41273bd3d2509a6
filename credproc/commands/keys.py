"""credproc keys add|import|rotate|remove: an iam idp's long-lived keys in the OS keyring."""

import argparse

from .. import app
from ..core import oskeyring
from ..core.credentials import mask
from ..core.errors import ConfigError, UsageError
from ..sources.iam import keysource

HELP = "keep an iam idp's access keys in the OS keyring: add, import from a profile, rotate, remove"
DESCRIPTION = """\
Manage the long-lived IAM user keys of an [idp.NAME] of type iam in the OS keyring (macOS
Keychain, Windows Credential Locker, Secret Service or KWallet; service "credproc", one item per idp).
  add      ask for the key id and secret on the terminal (echo off), check them with STS
           GetCallerIdentity, store them
  import   move the keys of a profile of ~/.aws/credentials into the keyring: check, store, read back,
           switch the idp to keys = "keyring", then take them out of the file (backups first; the
           backup of the credentials file does not keep the secret)
  rotate   CreateAccessKey, check the new key, store it, then DeleteAccessKey the old one (through the
           MFA session when the idp has mfa_serial). A failure at any step leaves a working key stored.
  remove   delete the idp's keyring item
Nothing prints a secret."""
EXAMPLES = """\
  credproc keys add --idp corp
  credproc keys import --idp corp --from-profile corp-user
  credproc keys rotate --idp corp
  credproc keys remove --idp corp"""


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    specs = {
        "add": "store keys typed on the terminal",
        "import": "move a profile's keys from ~/.aws/credentials into the keyring",
        "rotate": "replace the access key with a new one (IAM), never leaving none",
        "remove": "delete the idp's keys from the keyring",
    }
    examples = {
        "add": "  credproc keys add --idp corp          # asks for the key id and the secret (echo off)",
        "import": "  credproc keys import --idp corp --from-profile corp-user\n"
                  "  credproc keys import --idp corp --from-profile corp-user --yes",
        "rotate": "  credproc keys rotate --idp corp",
        "remove": "  credproc keys remove --idp corp\n  credproc keys remove --idp corp --yes",
    }
    for action, text in specs.items():
        p = sub.add_parser(action, help=text, description=text, epilog="examples:\n" + examples[action],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--idp", metavar="NAME", required=True, help="the [idp.NAME] (of type iam)")
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="configuration file")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="diagnostics on stderr")
        if action == "import":
            p.add_argument("--from-profile", metavar="P", required=True,
                           help="the AWS profile holding aws_access_key_id/aws_secret_access_key")
        if action in ("add", "import", "remove"):
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(args):
    from ..core import log

    if getattr(args, "debug", False):
        log.enabled = True
    app.guard_recursion()
    cfg = app.load_config(args)
    idp = cfg.idps.get(args.idp)
    from .. import sources as idp_registry

    if idp is None or not idp_registry.source_for(idp).holds_user_keys:
        known = ", ".join(n for n, i in sorted(cfg.idps.items()) if idp_registry.source_for(i).holds_user_keys)
        raise ConfigError(f"{cfg.path}: no [idp.{args.idp}] holding IAM user keys (those that do: {known or 'none'})")
    from ..core.prompt import Terminal

    terminal = Terminal(f"credproc keys {args.action} --idp {args.idp}")
    try:
        return {"add": _add, "import": _import, "rotate": _rotate, "remove": _remove}[args.action](args, cfg, idp, terminal)
    finally:
        terminal.close()


def _confirm(terminal, args, question):
    if getattr(args, "yes", False):
        return
    if not terminal.available():
        raise UsageError(f"{question.rstrip('?')}: confirmation needed and there is no terminal to ask on",
                         hint="run it in a terminal, or add --yes")
    answer = terminal.ask(f"{question} [y/N] ", "a confirmation").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("cancelled; nothing was changed")


def _verify(cfg, creds, context):
    """The caller ARN of these keys (STS GetCallerIdentity)."""
    from ..core import sts

    client = sts.client(cfg.settings.get("region") or "us-east-1", cfg.settings.get("sts_endpoint_url"), creds)
    response, _ = sts.call(client, "GetCallerIdentity", sts.describe_source(context, creds))
    return response["Arn"]


def _not_keyring_note(cfg, idp):
    if keysource.mode(idp) != "keyring":
        return (f'note: [idp.{idp["name"]}] takes its keys from {keysource.where(idp)}; set keys = "keyring" there '
                f"(and remove profile/keys_command) in {cfg.path} to use these")
    return None


def _add(args, cfg, idp, terminal):
    from ..core.credentials import Credentials
    from ..sources.iam.keysource import KEY_ID_RE

    terminal.require("the access key")
    key_id = terminal.ask("AWS access key ID: ", "the access key id").strip()
    if not KEY_ID_RE.match(key_id):
        raise UsageError("that is not an access key id (AKIA followed by capital letters and digits)")
    secret = terminal.ask("AWS secret access key: ", "the secret access key", secret=True).strip()
    if not secret:
        raise UsageError("no secret access key entered")
    creds = Credentials(key_id, secret)
    arn = _verify(cfg, creds, "the keys entered")
    if oskeyring.get(idp["name"], "checking for keys already stored") is not None:
        _confirm(terminal, args, f"replace the keys of idp {idp['name']} already in the OS keyring?")
    keysource.store_in_keyring(idp["name"], creds)
    print(f"stored the keys of {arn} ({mask(key_id)}) for idp {idp['name']} in the OS keyring ({oskeyring.name()})")
    note = _not_keyring_note(cfg, idp)
    if note:
        print(note)
    return 0


def _import(args, cfg, idp, terminal):
    from ..sources.iam.static_keys import StaticKeysProvider
    from . import keyfiles

    profile = args.from_profile
    creds = StaticKeysProvider(profile, idp["name"]).retrieve()
    if creds.session_token:
        raise UsageError(f"profile {profile} holds temporary credentials (aws_session_token), not an IAM user's keys")
    arn = _verify(cfg, creds, f"profile {profile}")
    switch = keysource.mode(idp) != "keyring"
    steps = [f"store the keys of {arn} ({mask(creds.access_key_id)}) in the OS keyring ({oskeyring.name()})"]
    if switch:
        steps.append(f'set keys = "keyring" in [idp.{idp["name"]}] of {cfg.path}')
    steps.append(f"remove them from profile {profile} of the shared AWS files (other tools using that profile "
                 "lose them)")
    print("credproc keys import will:\n" + "\n".join(f"  - {s}" for s in steps))
    _confirm(terminal, args, "go ahead?")
    keysource.store_in_keyring(idp["name"], creds)
    print(f"stored the keys in the OS keyring (service {oskeyring.SERVICE!r}, item {idp['name']!r})")
    if switch:
        backup = keyfiles.switch_to_keyring(cfg.path, idp["name"])
        print(f'set keys = "keyring" in [idp.{idp["name"]}] (backup: {backup})')
    # the keyring is now where credproc reads them: check it once more before the file loses them
    got = keysource.KeyringKeysProvider(idp["name"]).retrieve()
    if (got.access_key_id, got.secret_access_key) != (creds.access_key_id, creds.secret_access_key):
        raise ConfigError("the keys read back from the keyring differ from the ones stored; the file was left as it is")
    edited = keyfiles.remove_keys(profile, creds.access_key_id)
    for path, backup in edited:
        print(f"removed the keys from {path} (backup without the secret: {backup})")
    if not edited:
        print(f"note: the keys of profile {profile} were not found in a file credproc can edit; remove them yourself")
    return 0


def _rotate(args, cfg, idp, terminal):
    from .. import sources as idp_registry
    from ..sources.iam.rotation import BotoIam, Rotation, iam_client

    if keysource.mode(idp) != "keyring":
        raise UsageError(f"[idp.{idp['name']}] takes its keys from {keysource.where(idp)}; credproc rotates keys it "
                         "keeps in the OS keyring",
                         hint=f"move them there first: credproc keys import --idp {idp['name']} --from-profile {idp.get('profile') or 'PROFILE'}"
                         if keysource.mode(idp) == "profile" else "rotate them with your password manager's tools")
    source = keysource.KeyringKeysProvider(idp["name"])
    current = source.retrieve()
    signer, context = current, f"{source.describe()} ({mask(current.access_key_id)})"
    if idp.get("mfa_serial"):
        from ..context import Context

        ctx = Context(cfg, app.store(cfg), terminal)  # prompts (if any) name `credproc keys rotate` as the fix
        signer = idp_registry.source_for(idp).session_provider(ctx, idp, source).retrieve()
        context = f"the MFA session of idp {idp['name']}"
    iam = BotoIam(iam_client(signer, idp.get("iam_endpoint_url"), cfg.settings.get("region") or "us-east-1"), context)
    rotation = Rotation(iam, lambda c: _verify(cfg, c, "the new key" if c is not current else source.describe()),
                        lambda c: keysource.store_in_keyring(idp["name"], c), print,
                        load=lambda: keysource.load_from_keyring(idp["name"]))
    new = rotation.run(current)
    if idp.get("mfa_serial"):
        from ..sources.base import idp_identity  # not ..chain: that imports the STS client

        app.store(cfg).delete(idp_identity(idp["name"]))  # made from the old key: the next call starts a new one
    print(f"rotated: idp {idp['name']} now uses {mask(new.access_key_id)}")
    return 0


def _remove(args, cfg, idp, terminal):
    if oskeyring.get(idp["name"], "looking up the keys") is None:
        print(f"the OS keyring holds no keys for idp {idp['name']}")
        return 0
    _confirm(terminal, args, f"delete the keys of idp {idp['name']} from the OS keyring (make sure you have "
                             "another copy, or no longer need them)?")
    oskeyring.delete(idp["name"], f"deleting the keys of idp {idp['name']}")
    print(f"deleted the keys of idp {idp['name']} from the OS keyring")
    if keysource.mode(idp) == "keyring":
        print(f"note: [idp.{idp['name']}] still has keys = \"keyring\"; run credproc keys add --idp {idp['name']} "
              "before using its roles")
    return 0
