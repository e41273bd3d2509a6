"""credproc init: a first configuration in a few questions, each also a flag.

The questions come from the sources' Key tables (IdentitySource.init_keys, role_keys), so a new
source gets its questions without touching this module. It writes a commented config.toml (mode
0600, refusing to replace one), the ~/.aws/config profile through setup's careful writer, then runs
doctor and one real call (`credproc login`)."""

import argparse
import os

from .. import sources as idp_registry
from ..core import paths
from ..core.errors import ConfigError, UsageError

HELP = "write a first configuration: a few questions (or flags), then setup, doctor and one real call"
DESCRIPTION = """\
A short walk-through for one identity source: the source, the few facts it needs (each with an
example), the role; then it writes a commented config.toml (the default one, or --config PATH),
adds the ~/.aws/config profile with `credproc setup`, runs `credproc doctor` and gets the role's
credentials once (`credproc login`), prompting as a real call would.

Every question is also a flag: with all the required ones given (or --yes to take the defaults of
the others) it asks nothing, so it runs in scripts. It never replaces an existing config.toml
(edit that one, or use `credproc import` for profiles you already have in ~/.aws/config)."""
EXAMPLES = """\
  credproc init                     # asks
  credproc init --source iam --idp corp --profile corp-user \\
      --mfa-serial arn:aws:iam::123456789012:mfa/alice --role admin --arn arn:aws:iam::111111111111:role/Admin
  credproc init --source sso --start-url https://my-org.awsapps.com/start --region eu-west-1 \\
      --account-id 111111111111 --role-name AdministratorAccess --role admin
  credproc init --source cas --url https://sso.example.edu/cas --username alice --role admin --yes"""

_DEFAULT_IDP = "work"
_DEFAULT_ROLE = "admin"


def _flag(name):
    return "--" + name.replace("_", "-")


def _asked_keys(source):
    by_name = {k.name: k for k in source.keys}
    names = source.init_keys or tuple(k.name for k in source.keys if k.required)
    return [by_name[n] for n in names]


def _all_keys():
    """{key name: Key} over every source's init keys and role keys (same name, same flag)."""
    found = {}
    for source in idp_registry.all_sources():
        for key in list(_asked_keys(source)) + list(source.role_keys):
            found.setdefault(key.name, key)
    return found


def add_arguments(parser):
    parser.add_argument("--source", choices=idp_registry.names(), help="the identity source type")
    parser.add_argument("--idp", metavar="NAME", help=f"the [idp.NAME] to write (default: {_DEFAULT_IDP})")
    parser.add_argument("--role", metavar="NAME", help=f"the [role.NAME] and AWS profile to write (default: {_DEFAULT_ROLE})")
    parser.add_argument("--arn", metavar="ARN", help="the role to assume (arn:aws:iam::123456789012:role/Name)")
    parser.add_argument("--region", metavar="REGION", help="the default region ([settings] region; for Identity "
                                                            "Center also its region)")
    parser.add_argument("--sts-endpoint-url", metavar="URL", help="[settings] sts_endpoint_url (a private or local STS)")
    for name, key in sorted(_all_keys().items()):
        if name == "region" or key.kind not in (str, int):
            continue
        choices = f" ({', '.join(key.choices)})" if key.choices else ""
        parser.add_argument(_flag(name), dest=f"key_{name}", metavar=name.upper(),
                            help=f"the {name} key{choices}".replace("%", "%%"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other key of the idp table (repeatable), e.g. --set aws_cli_cache=share")
    parser.add_argument("--all-roles", action="store_true",
                        help="(IAM Identity Center) sign in now and write every account and role you can reach "
                             "(credproc sso sync), instead of one role")
    parser.add_argument("--yes", action="store_true", help="ask nothing: take the default of every question not given")
    parser.add_argument("--no-check", action="store_true", help="write the files only: no doctor, no real call")


def _first_sentence(doc):
    text = doc.replace("`", "")
    end = text.find(". ")
    text = text if end < 0 else text[:end + 1]
    return text if len(text) <= 100 else text[:97].rstrip() + "..."


def _value(v):
    import json

    return str(v) if isinstance(v, int) and not isinstance(v, bool) else json.dumps(v)


def _typed(key, raw):
    """A --set value as its key's TOML type, checked like the config checks it."""
    if key.kind is bool:
        if raw.lower() not in ("true", "false"):
            raise UsageError(f"--set {key.name}: true or false")
        return raw.lower() == "true"
    if key.kind is list:
        return [x.strip() for x in raw.split(",") if x.strip()]
    if key.kind is dict:
        raise UsageError(f"--set {key.name}: a table; write it in the file")
    problem = _key_check(key)(raw)
    if problem:
        raise UsageError(f"--set {key.name}={raw!r}: {problem}")
    return int(raw) if key.kind is int else raw


def config_text(source, idp_name, idp, role_name, role, settings):
    """The commented config.toml init writes."""
    from ..core.names import toml_key

    out = ["# Written by `credproc init`. Every key is described in the README's configuration reference,",
           "# and examples/config.toml has a block for each identity source. `credproc doctor` checks it.", ""]
    if settings:
        out.append("[settings]")
        out += [f"{k} = {_value(v)}" for k, v in settings.items()]
        out.append("")
    out.append(f"[idp.{toml_key(idp_name)}]  # {source.title.replace('`', '')}")
    out.append(f"type = {_value(source.type_name)}")
    docs = {k.name: k.doc for k in source.keys}
    for k, v in idp.items():
        out.append(f"{k} = {_value(v)}  # {_first_sentence(docs[k])}")
    others = [k.name for k in source.keys if k.name not in idp]
    if others:
        out.append(f"# other keys of this source: {', '.join(others)}")
    if role_name is None:
        return "\n".join(out) + "\n"
    out += ["", f"[role.{toml_key(role_name)}]", f"idp = {_value(idp_name)}"]
    role_docs = {k.name: k.doc for k in source.role_keys}
    for k, v in role.items():
        comment = f"  # {_first_sentence(role_docs[k])}" if k in role_docs else ""
        out.append(f"{k} = {_value(v)}{comment}")
    return "\n".join(out) + "\n"


class _Asker:
    def __init__(self, args):
        from ..core.prompt import Terminal

        self.args = args
        self.terminal = Terminal("credproc init (with flags)")

    def _can_ask(self):
        return not self.args.yes and self.terminal.available()

    def value(self, flag, question, required, check=None, default=None, example=None):
        """The flag's value, else an answer (re-asked on a bad one), else the default."""
        dest = flag[2:].replace("-", "_")
        # a source's key first: `role_name` is also the positional ROLE every role-taking command has
        given = getattr(self.args, "key_" + dest, None)
        if given is None and not hasattr(self.args, "key_" + dest):
            given = getattr(self.args, dest, None)
        if given is not None:
            problem = check(given) if check else None
            if problem:
                raise UsageError(f"{flag} {given!r}: {problem}")
            return given
        if not self._can_ask():
            if required and default is None:
                raise UsageError(f"{flag} is needed (there is no terminal to ask on{', or --yes was given' if self.args.yes else ''})",
                                 hint=f"pass {flag} VALUE" + (f", e.g. {flag} {example}" if example else ""))
            return default
        shown = f" [{default}]" if default is not None else "" if required else " (empty: none)"
        hint = f" (e.g. {example})" if example else ""
        for _ in range(3):
            answer = self.terminal.ask(f"{question}{hint}{shown}: ", question).strip()
            if not answer:
                if default is not None or not required:
                    return default
                self.terminal.say("An answer is needed.")
                continue
            problem = check(answer) if check else None
            if not problem:
                return answer
            self.terminal.say(f"{answer!r}: {problem}")
        raise UsageError(f"no usable answer for {question}")

    def close(self):
        self.terminal.close()


def _key_check(key):
    def check(value):
        if key.kind is int:
            try:
                value = int(value)
            except ValueError:
                return "must be a number"
        if key.choices and value not in key.choices:
            return f"must be one of {', '.join(key.choices)}"
        return key.check(value) if key.check else None
    return check


def _example(key, source):
    if key.name in source.example_idp:
        return source.example_idp[key.name]
    if key.name in source.example_role:
        return source.example_role[key.name]
    return key.hint.strip(" ()").replace("e.g. ", "") if key.hint and "e.g." in key.hint else None


def run(args):
    from .. import config as config_mod
    from ..core.names import config_name

    config_path = os.path.abspath(paths.config_file(getattr(args, "config", None)))
    if os.path.exists(config_path):
        raise ConfigError(f"{config_path} already exists; credproc init never replaces it",
                          hint="edit it (examples/config.toml has a block per source), run `credproc import` for "
                               "your ~/.aws/config profiles, or pass --config NEW_PATH")
    ask = _Asker(args)
    try:
        type_name = args.source
        if type_name is None:
            if not ask._can_ask():
                raise UsageError("--source is needed (there is no terminal to ask on)",
                                 hint=f"pass --source {' | '.join(idp_registry.names())}")
            sources = idp_registry.all_sources()
            index = ask.terminal.choose("Which identity source gives you AWS access?",
                                        [f"{s.type_name}: {s.title.replace('`', '')}" for s in sources],
                                        "the identity source")
            type_name = sources[index].type_name
        source = idp_registry.get(type_name)
        name_ok = lambda v: None if config_name(v) == v else "use letters, digits, '.', '_' or '-'"  # noqa: E731
        idp_name = ask.value("--idp", "Name for this identity source in credproc", True, name_ok, _DEFAULT_IDP)
        settings = {}
        region_key = next((k for k in source.keys if k.name == "region"), None)
        region = ask.value("--region", "AWS region" if region_key is None else "IAM Identity Center region",
                           region_key is not None and region_key.required,
                           _key_check(region_key) if region_key else
                           (lambda v: None if config_mod.REGION_RE.match(v) else "an AWS region (e.g. eu-west-1)"),
                           None, "eu-west-1")
        if region:
            settings["region"] = region
        if args.sts_endpoint_url:
            settings["sts_endpoint_url"] = args.sts_endpoint_url
        idp = {}
        for key in _asked_keys(source):
            if key.name == "region":
                if region:
                    idp["region"] = region
                continue
            required = key.required or key.name == "profile"  # iam: required unless keys come from elsewhere
            suggested = None
            if getattr(args, "key_" + key.name, None) is None:
                suggested = source.init_suggest(key.name, dict(idp, **{k.strip(): v.strip() for k, v in (
                    (i.split("=", 1) + [""])[:2] for i in args.set)}), settings)
                if suggested is not None:
                    print(f"found {key.name} = {suggested}")
            value = ask.value(_flag(key.name), _first_sentence(key.doc).rstrip("."), required, _key_check(key),
                              suggested, _example(key, source))
            if value is not None:
                idp[key.name] = int(value) if key.kind is int else value
        for item in args.set:
            key_name, sep, raw = item.partition("=")
            key = next((k for k in source.keys if k.name == key_name.strip()), None)
            if not sep or key is None:
                raise UsageError(f"--set {item!r}: not KEY=VALUE with a key of a {source.type_name} idp",
                                 hint="its keys: " + ", ".join(k.name for k in source.keys))
            idp[key.name] = _typed(key, raw.strip())
        all_roles = False
        if source.lists_roles and not any(getattr(args, "key_" + k.name, None) for k in source.role_keys):
            all_roles = args.all_roles or (ask._can_ask() and ask.terminal.ask(
                "Sign in now and write every account and role you can reach? [Y/n] ", "a choice").strip().lower()
                in ("", "y", "yes"))
        role_name = None if all_roles else ask.value("--role", "Name of the role (and of its AWS profile)", True,
                                                     name_ok, _DEFAULT_ROLE)
        role = {}
        if all_roles:
            pass
        elif source.role_keys:
            for key in source.role_keys:
                value = ask.value(_flag(key.name), _first_sentence(key.doc).rstrip("."), False, _key_check(key),
                                  None, _example(key, source))
                if value is not None:
                    role[key.name] = value
        else:
            arn_ok = lambda v: None if config_mod.ROLE_ARN_RE.match(v) else "an IAM role ARN (arn:aws:iam::123456789012:role/Name)"  # noqa: E731
            arn = ask.value("--arn", "ARN of the role to assume", False, arn_ok, None,
                            "arn:aws:iam::123456789012:role/Admin")
            if arn:
                role["arn"] = arn
    finally:
        ask.close()
    text = config_text(source, idp_name, idp, role_name, role, settings)
    config_mod.parse(config_path, text.encode())  # every problem at once, before anything is written
    _write_new(config_path, text.encode())
    print(f"wrote {config_path}")
    if role_name is None:  # every role the sign-in reaches, with their profiles
        from . import sso as sso_cmd

        print(f"\n== credproc sso sync --idp {idp_name}   (signs in, then writes every account and role)")
        return sso_cmd.run(argparse.Namespace(config=config_path, debug=False, action="sync", idp=idp_name,
                                              template=sso_cmd.DEFAULT_TEMPLATE, dry_run=False, yes=True))
    from . import setup

    setup_args = argparse.Namespace(config=config_path, role=role_name, profile_name=None, print=False, debug=False)
    setup.run(setup_args)
    if args.no_check:
        print(f"next: credproc doctor, then credproc login {role_name}")
        return 0
    from . import doctor, login

    print("\n== credproc doctor")
    doctor_rc = doctor.run(argparse.Namespace(config=config_path, debug=False))
    print(f"\n== credproc login {role_name}   (one real call)")
    login.run(argparse.Namespace(config=config_path, role=role_name, force=False, debug=False))
    print(f"done: aws sts get-caller-identity --profile {role_name}")
    return doctor_rc


def _write_new(path, data):
    from ..core.errors import LocalFileError
    from ..core.store import atomic_write

    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)

        def still_absent():
            if os.path.exists(path):
                raise LocalFileError(f"{path} appeared while credproc init was writing it; nothing was written")

        atomic_write(path, data, 0o600, before_replace=still_absent)
    except OSError as e:
        raise LocalFileError(f"cannot write {path}: {e.strerror}") from None
