"""The console script. Tries the cache-hit fast path before importing the CLI."""

import sys

# errors.OutputClosed.exit_code (not imported here: this module is on the cache-hit path)
OUTPUT_CLOSED = 141


def _run(argv):
    from . import fastpath

    served, lock_deadline = fastpath.serve(argv)  # the cache hit, or a light wait for another's refresh
    if served:
        return 0
    from .cli import main as cli_main

    return cli_main(argv, lock_deadline=lock_deadline)


def _output_closed():
    """stdout's reader went away (`| head`, or an SDK that killed its credential_process): exit quietly.
    Point stdout at /dev/null so the interpreter's final flush has nowhere to fail either."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return OUTPUT_CLOSED


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = _run(argv)
        sys.stdout.flush()
    except SystemExit:  # argparse's --help, --version and usage errors
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _output_closed()
        raise
    except BrokenPipeError:
        return _output_closed()
    except KeyboardInterrupt:  # while the fast path waited for another process' refresh (cli handles its own)
        from .core.errors import Interrupted

        sys.stderr.write("credproc: interrupted\n")
        return Interrupted.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
