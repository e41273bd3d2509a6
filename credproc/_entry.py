"""The console script. Tries the cache-hit fast path before importing the CLI.

stdout is guarded here, once, for every path: a closed stdout (`credproc ... >&-`, or a reader
that went away) ends the run quietly with OUTPUT_CLOSED; a stdout that cannot be written (a full
disk, an I/O error) ends it with one line and OUTPUT_FAILED, never a traceback. A standard file
descriptor that is closed at start is pointed at /dev/null first, so that no file credproc opens
(a cache entry, a lock) can become fd 0, 1 or 2, and a command it runs cannot write into one."""

import os
import sys

# errors.OutputClosed.exit_code and errors.OutputFailed.exit_code (not imported here: this module
# is on the cache-hit path)
OUTPUT_CLOSED = 141
OUTPUT_FAILED = 74


class StdoutFailed(BaseException):
    """stdout cannot be written (not a closed reader: that is BrokenPipeError). A BaseException, as
    KeyboardInterrupt is: it ends the run wherever it happens, and no `except Exception` on the way
    can turn it into something else."""


class _Guarded:
    """sys.stdout (or its .buffer) with every write failure other than a closed reader raised as
    StdoutFailed."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def _do(self, fn, *args):
        try:
            return fn(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise StdoutFailed(e.strerror or type(e).__name__) from None

    def write(self, data):
        return self._do(self._stream.write, data)

    def writelines(self, lines):
        return self._do(self._stream.writelines, lines)

    def flush(self):
        return self._do(self._stream.flush)

    @property
    def buffer(self):
        return _Guarded(self._stream.buffer)


class _Closed:
    """sys.stdout when fd 1 was closed at start: every write is a closed reader's."""

    closed = False
    encoding = "utf-8"
    written = False

    def write(self, data):
        self.written = True
        raise BrokenPipeError(32, "stdout is closed")

    writelines = write

    def flush(self):
        if self.written:  # a writer that swallowed the error (argparse does) learns it here
            self.written = False
            raise BrokenPipeError(32, "stdout is closed")

    def isatty(self):
        return False

    def fileno(self):
        raise OSError(9, "stdout is closed")

    @property
    def buffer(self):
        return self


def _plug_closed_fds():
    """Point a closed fd 0, 1 or 2 at /dev/null; True when fd 1 was closed."""
    stdout_closed = False
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)
            except OSError:
                pass
            stdout_closed |= fd == 1
    return stdout_closed


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
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    except (OSError, ValueError):
        pass
    return OUTPUT_CLOSED


def _output_failed(why):
    _output_closed()  # the final flush must not fail again
    try:
        sys.stderr.write(f"credproc: cannot write to stdout: {why}; nothing was printed (a full disk?)\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    return OUTPUT_FAILED


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if _plug_closed_fds() or sys.stdout is None:
        sys.stdout = _Closed()
    elif not isinstance(sys.stdout, _Guarded):
        sys.stdout = _Guarded(sys.stdout)
    try:
        code = _run(argv)
        sys.stdout.flush()
    except SystemExit:  # argparse's --help, --version and usage errors
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _output_closed()
        except StdoutFailed as e:
            return _output_failed(e)
        raise
    except BrokenPipeError:
        return _output_closed()
    except StdoutFailed as e:
        return _output_failed(e)
    except KeyboardInterrupt:  # while the fast path waited for another process' refresh (cli handles its own)
        from .core.errors import Interrupted

        sys.stderr.write("credproc: interrupted\n")
        return Interrupted.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
