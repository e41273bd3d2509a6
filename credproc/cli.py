"""The command line: parse, run, emit. The only place that turns errors into exit codes.

stdout carries the credential_process document (written once, at the end) or a command's output;
everything else goes to stderr or the terminal.
"""

import argparse
import os
import sys

from . import __version__, app, commands, log
from .errors import EXIT_CODES, ConfigError, CredprocError, Interrupted

EPILOG = """\
examples:
  credproc --role admin                 print credentials for role 'admin' (for credential_process)
  credproc login --role admin           authenticate ahead of time, in a terminal
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
        p.set_defaults(run=module.run)
    return parser


def cmd_process(args):
    """credproc --role NAME: the credential_process document on stdout, nothing else."""
    creds = app.role_credentials(args)
    out = sys.stdout.buffer
    out.write(creds.to_process_json())
    out.flush()
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        log.enabled = True
        os.environ["CREDPROC_DEBUG"] = "1"
    try:
        if args.command:
            return args.run(args)
        if not args.role:
            parser.print_usage(sys.stderr)
            sys.stderr.write("credproc: error: pass --role NAME (or a command; see credproc --help)\n")
            return 2
        return cmd_process(args)
    except CredprocError as e:
        sys.stderr.write(f"credproc: {e}\n")
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
