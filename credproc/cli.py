"""The command line: parse, run, emit. The only place that turns errors into exit codes.

stdout carries the credential_process document (written once, at the end) or a command's output;
everything else goes to stderr or the terminal.
"""

import argparse
import os
import sys

from . import __version__, app, commands
from .core import log
from .core.errors import EXIT_CODES, ConfigError, CredprocError, Interrupted

EPILOG = """\
examples:
  credproc --role admin                 print credentials for role 'admin' (for credential_process)
  credproc login --role admin           authenticate ahead of time, in a terminal
  credproc login admin                  the same: commands that take --role NAME also take the role as
                                        their first argument (credproc exec admin -- aws s3 ls)
  credproc COMMAND --help               help and examples for a command

~/.aws/config:
  [profile admin]
  credential_process = /absolute/path/to/credproc --role admin

exit codes:
""" + "\n".join(f"  {code:<4}{text}" for code, text in EXIT_CODES)


def installed_version():
    """The version pip/pipx installed (package metadata); the source's own when run from a checkout."""
    from importlib import metadata

    try:
        return metadata.version("credproc")
    except metadata.PackageNotFoundError:
        return f"{__version__} (not installed)"


class _Version(argparse.Action):
    """-V/--version: the installed version, looked up (importlib.metadata: ~20 ms) only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(f"credproc {installed_version()}\n")
        parser.exit()


def _columns():
    """shutil.get_terminal_size().columns without importing shutil (~3 ms; argparse imports it for
    every formatter it makes, and it makes one for every add_argument)."""
    try:
        columns = int(os.environ["COLUMNS"])
        if columns > 0:
            return columns
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


ALL = "*"  # build_parser: every command's parser (--help, completion)
_VALUE_OPTIONS = ("--config", "--role")  # the top-level options that take a value


def command_in(argv):
    """Which command's parser argv needs: its first word that is neither an option nor an option's
    value; ALL for the top-level --help; None for no command (`--role NAME`, `--version`). A guess
    that main() checks: argparse decides, and a wrong guess costs only a second parse."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return None
        if arg.startswith("-") and arg != "-":
            name, eq, _ = arg.partition("=")
            if arg == "-h" or (len(name) > 2 and "--help".startswith(name)):
                return ALL
            if not eq and len(name) > 2 and any(o.startswith(name) for o in _VALUE_OPTIONS):  # argparse takes --conf
                i += 1
            i += 1
            continue
        return arg if arg in commands.NAMES else None
    return None


class _Once(argparse._StoreAction):
    """A value option that may be given once per command line: before the command and after it
    count as one line (`credproc --role a login --role b` is two). A second one was silently the
    winner; now it is a usage error."""

    seen = None  # dest -> [(option, value)], shared by the parsers of one build_parser()

    def __call__(self, parser, namespace, values, option_string=None):
        seen = self.seen.setdefault(self.dest, [])
        seen.append((option_string, values))
        if len(seen) > 1:
            (_, a), (second, b) = seen[0], seen[1]
            parser.error(f"{second} given twice ({a} and {b}): give it once")
        super().__call__(parser, namespace, values, option_string)


def _once_everywhere(parser, seen=None):
    """Every single-value option of the parser and its subparsers becomes a _Once, all sharing one
    record of what was given, which each parse by the top parser starts afresh."""
    if seen is None:
        seen = {}
        parse = parser.parse_known_args

        def parse_afresh(*args, **kwargs):
            seen.clear()
            return parse(*args, **kwargs)

        parser.parse_known_args = parse_afresh
    for action in parser._actions:
        if type(action) is argparse._StoreAction and action.option_strings and action.nargs is None:
            action.__class__ = _Once
            action.seen = seen
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _once_everywhere(sub, seen)


def _common(parser, suppress):
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="configuration file (default: $CREDPROC_CONFIG, else config.toml in the user config dir)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="diagnostics on stderr (never secrets)")


def build_parser(command=ALL):
    """The parser with `command`'s sub-parser complete (ALL: every one). The other commands are
    bare names that take anything (main() parses again if argparse chose one of them), so
    `--role NAME` or `status` imports no other command module."""
    parser = argparse.ArgumentParser(
        prog="credproc", formatter_class=_Formatter, epilog=EPILOG,
        description="An AWS credential_process helper: prints credentials for a configured role, from an encrypted "
                    "cache when it can, refreshing them (with a prompt on the terminal only when needed) when it must.")
    _common(parser, suppress=False)
    parser.add_argument("-V", "--version", action=_Version,
                        help="print credproc's version (from the installed package) and exit")
    parser.add_argument("--role", metavar="NAME", help="the [role.NAME] to print credential_process JSON for")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bare = None
    for name in commands.NAMES:
        if command is not ALL and name != command:
            if bare is None:  # one parser that takes anything (no options: all of it is "rest"), for every other name
                bare = argparse.ArgumentParser(prog="credproc", add_help=False, prefix_chars="\0", formatter_class=_Formatter)
                bare.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
                bare.set_defaults(built=False)
            sub._name_parser_map[name] = bare  # what add_parser does, without a parser per name (~0.2 ms each)
            continue
        module = commands.load(name)
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION, formatter_class=_Formatter,
                           epilog="examples:\n" + module.EXAMPLES)
        _common(p, suppress=True)
        module.add_arguments(p)
        _role_anywhere(p)
        p.set_defaults(run=module.run)
    _once_everywhere(parser)
    return parser


def _role_anywhere(p):
    """A command's --role may also be given as its first positional argument (`credproc login admin`,
    as aws-vault users type it) or before the command (`credproc --role admin login`). argparse
    therefore no longer requires --role itself; main() checks, through _resolve_role, that the
    command got a role when it needs one."""
    role = next((a for a in p._actions if "--role" in a.option_strings), None)
    if role is None:
        return
    groups = [g for g in p._mutually_exclusive_groups if role in g._group_actions]
    need = "required" if role.required else None
    for g in groups:
        if g.required:  # logout: --role NAME or --all
            need = " or ".join(a.option_strings[0] for a in g._group_actions if a is not role)
            g.required = False
    role.required = False
    role.default = argparse.SUPPRESS  # else an absent --role would hide the one given before the command
    if not any(a.nargs == argparse.REMAINDER for a in p._actions):  # exec: taken from its COMMAND words
        p.add_argument("role_name", nargs="?", metavar="ROLE", default=argparse.SUPPRESS,
                       help="the role, as with --role (for the commands that take one)")
    p.set_defaults(role_needed=need)


def _resolve_role(parser, args):
    """args.role from --role, the positional ROLE or (exec) the first word before `--`."""
    sub = parser._subparsers._group_actions[0].choices[args.command]
    given = [r for r in (getattr(args, "role", None), getattr(args, "role_name", None)) if r]
    if not given and hasattr(args, "argv") and args.argv and args.argv[0] != "--":
        given = [args.argv.pop(0)]  # credproc exec ROLE [--server] -- COMMAND
        options = []
        while args.argv and args.argv[0].startswith("-") and args.argv[0] != "--":
            options.append(args.argv.pop(0))
        if options:  # the command's own options, after the role: parse them as if they came first
            rest = args.argv
            sub.parse_args(options, namespace=args)
            args.argv = rest
    if len(set(given)) > 1:
        sub.error(f"two different roles given: {given[0]} and {given[1]}")
    args.role = given[0] if given else None
    need = getattr(args, "role_needed", None)
    if args.role is None and need == "required":
        sub.error(f"name the role: credproc {args.command} ROLE (or --role ROLE)")
    others = [o for o in need.split(" or ") if getattr(args, o.lstrip("-"), False)] if need != "required" and need else []
    if args.role is None and need and need != "required" and not others:
        sub.error(f"name the role (credproc {args.command} ROLE, or --role ROLE) or give {need}")
    if args.role is not None and others:
        sub.error(f"give either a role or {others[0]}, not both")


def cmd_process(args, lock_deadline=None):
    """credproc --role NAME: the credential_process document on stdout, nothing else. lock_deadline:
    the fast path already began waiting for the lock (time.monotonic() it gives up at)."""
    creds = app.role_credentials(args, lock_deadline=lock_deadline)
    out = sys.stdout.buffer
    out.write(creds.to_process_json())
    out.flush()
    return 0


def _comment_words(argv):
    """The words from the first one starting with '#' or ';': a trailing comment on a
    credential_process line, which botocore passes on as arguments (shlex, no shell)."""
    for i, word in enumerate(argv):
        if word == "--":  # exec's COMMAND follows: its words are its own
            break
        if word.startswith(("#", ";")) and (i == 0 or argv[i - 1] not in ("--config", "--role")):
            return argv[i:]
    return []


def main(argv=None, lock_deadline=None):
    """lock_deadline: from the fast path (_entry), for `--role NAME` (cmd_process)."""
    argv = sys.argv[1:] if argv is None else argv
    words = _comment_words(list(argv))
    if words:
        sys.stderr.write(f"credproc: error: {' '.join(words)[:60]!r} looks like a trailing comment on the "
                         "credential_process line, which botocore passes on as arguments; move the comment to a "
                         "line of its own in ~/.aws/config (credproc doctor checks the profiles)\n")
        return 2
    parser = build_parser(command_in(argv))
    args = parser.parse_args(argv)
    if getattr(args, "built", True) is False:  # argparse found another command than guessed
        parser = build_parser(args.command)
        args = parser.parse_args(argv)
    if args.command and not hasattr(args, "role_needed") and args.role is not None:
        # `credproc --role admn status`: status shows every role, so the typo went unnoticed
        parser.error(f"credproc {args.command} does not take --role (given: {args.role})")
    if args.debug:
        log.enabled = True
        os.environ["CREDPROC_DEBUG"] = "1"
    try:
        if args.command:
            if hasattr(args, "role_needed"):
                _resolve_role(parser, args)
            return args.run(args)
        if not args.role:
            parser.print_usage(sys.stderr)
            sys.stderr.write("credproc: error: pass --role NAME (or a command; see credproc --help)\n")
            return 2
        return cmd_process(args, lock_deadline)
    except CredprocError as e:
        from .core.text import clean  # messages quote servers and config values: no raw control characters

        sys.stderr.write(f"credproc: {clean(e)}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("credproc: interrupted\n")
        return Interrupted.exit_code
    except BrokenPipeError:  # the reader of stdout went away: _entry exits quietly
        raise
    except Exception as e:  # a bug: say so without dumping internals (which could hold secrets)
        if args.debug:
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"credproc: unexpected error ({type(e).__name__}); run again with --debug and report it\n")
        return 1


__all__ = ["main", "build_parser", "ConfigError"]
