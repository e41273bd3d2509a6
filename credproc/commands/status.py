"""credproc status: not implemented yet."""

from ..errors import CredprocError

HELP = "(not implemented yet)"
DESCRIPTION = HELP
EXAMPLES = "  (none yet)"


def add_arguments(parser):
    pass


def run(args):
    raise CredprocError("credproc status is not implemented yet")
