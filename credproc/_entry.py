"""The console script. Tries the cache-hit fast path before importing the CLI."""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from . import fastpath

    if fastpath.try_serve(argv):
        return 0
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
