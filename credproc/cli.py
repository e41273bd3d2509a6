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


def _common(parser, suppress):
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="configuration file (default: $CREDPROC_CONFIG, else config.toml in the user config dir)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="diagnostics on stderr (never secrets)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="credproc", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="An AWS credential_process helper: prints credentials for a configured role, from an encrypted "
                    "cache when it can, refreshing them (with a prompt on the terminal only when needed) when it must.")
    _common(parser, suppress=False)
    parser.add_argument("-V", "--version", action="version", version=f"credproc {installed_version()}",
                        help="print credproc's version (from the installed package) and exit")
    parser.add_argument("--role", metavar="NAME", help="the [role.NAME] to print credential_process JSON for")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands.NAMES:
        module = commands.load(name)
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="examples:\n" + module.EXAMPLES)
        _common(p, suppress=True)
        module.add_arguments(p)
        _role_anywhere(p)
        p.set_defaults(run=module.run)
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


def cmd_process(args):
    """credproc --role NAME: the credential_process document on stdout, nothing else."""
    creds = app.role_credentials(args)
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


def main(argv=None):
    words = _comment_words(sys.argv[1:] if argv is None else list(argv))
    if words:
        sys.stderr.write(f"credproc: error: {' '.join(words)[:60]!r} looks like a trailing comment on the "
                         "credential_process line, which botocore passes on as arguments; move the comment to a "
                         "line of its own in ~/.aws/config (credproc doctor checks the profiles)\n")
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
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
        return cmd_process(args)
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
