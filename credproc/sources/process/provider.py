"""Running the helper of a `type = "process"` idp (any credential_process command: okta-aws-cli,
aws_signing_helper for IAM Roles Anywhere, a company's own) and reading its document.

The command is split as botocore splits a credential_process line on this platform (POSIX:
shlex.split; Windows: botocore's own splitter) and run without a shell. Its stdout is the
credential_process document and a secret: it is read up to MAX_PROCESS_OUTPUT, parsed strictly
(core.credentials.parse_process_document) and never logged. Its stderr is diagnostics: only its
last line is shown, cleaned of control characters, when it fails.
"""

import os
import signal
import subprocess
import threading
import time

from ...core import log
from ...core.cache import Entry
from ...core.credentials import MAX_PROCESS_OUTPUT, MIN_REMAINING, parse_process_document
from ...core.errors import AuthenticationFailed, ConfigError, LoginRequired, RecursionDetected, ServiceError
from ...core.prompt import RECURSION_MARK
from ...core.text import clean, short

# the tail of the helper's stderr kept for the failure message
MAX_STDERR = 64 * 1024
# after the helper exits, how long a grandchild holding its pipes open may delay us
PIPE_GRACE = 1.0
# SIGTERM, then this long before SIGKILL
KILL_GRACE = 2.0
READ_SIZE = 8192


def no_expiration_identity(idp_name):
    """The cache identity of the note "this idp's helper returned credentials without Expiration"
    (no secret in it), which `status` reports as "refreshed on every call"."""
    return f"process-noexp:{idp_name}"


def split_command(command, key):
    """argv exactly as the SDKs' botocore would run this credential_process line here."""
    from botocore.compat import compat_shell_split

    try:
        argv = compat_shell_split(command)
    except ValueError as e:
        raise ConfigError(f"{key}: cannot split the command: {e}") from None
    if not argv:
        raise ConfigError(f"{key} is empty")
    return argv


class _Reader(threading.Thread):
    """Drains one pipe: keeps at most `limit` bytes (the head, or with tail=True the last ones),
    copies each chunk to `tee` (a terminal fd) if given, and calls on_overflow once past limit."""

    def __init__(self, pipe, limit, tail=False, tee=None, on_overflow=None):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.limit = limit
        self.tail = tail
        self.tee = tee
        self.on_overflow = on_overflow
        self.data = bytearray()
        self.overflow = False

    def run(self):
        fd = self.pipe.fileno()
        try:
            while True:
                chunk = os.read(fd, READ_SIZE)
                if not chunk:
                    return
                if self.tee is not None:
                    try:
                        os.write(self.tee, chunk)
                    except OSError:
                        self.tee = None
                if self.overflow and not self.tail:
                    continue  # draining only: the helper is being killed
                self.data += chunk
                if len(self.data) > self.limit:
                    if self.tail:
                        del self.data[:len(self.data) - self.limit]
                    else:
                        self.overflow = True
                        del self.data[self.limit + 1:]
                        if self.on_overflow:
                            self.on_overflow()
        except (OSError, ValueError):
            return


class ProcessProvider:
    """Runs the idp's command once per retrieve(); the CachedProvider around it (source.py) makes
    that once per Expiration for every caller at once."""

    def __init__(self, ctx, idp):
        self.ctx = ctx
        self.idp = idp
        self.key = f"idp.{idp['name']}.command"

    def describe(self):
        return f"Process(idp {self.idp['name']})"

    def never_cached(self):
        """The helper's last credentials had no Expiration (the note _note_expiration keeps): the
        CachedProviders around this one then run it without their lock, since there is no result
        to share; waiting for each other would only queue the callers up."""
        cfg = self.ctx.config
        try:
            note = self.ctx.store.get(no_expiration_identity(self.idp["name"]), quiet=True)
        except Exception:  # noqa: BLE001 - no note: the usual locked path
            return False
        return note is not None and note.fingerprint == cfg.idp_fingerprint(self.idp["name"])

    # -- running it ------------------------------------------------------------------------------
    def _env(self):
        env = dict(os.environ)
        env.update(self.idp.get("env") or {})
        env["CREDPROC_ACTIVE"] = str(os.getpid())  # a helper that runs credproc again is refused
        return env

    def _kill(self, proc, own_group):
        """The helper and, when it has its own process group (POSIX, not sharing our terminal),
        everything it started."""
        if proc.poll() is not None and not own_group:
            return
        try:
            if os.name == "nt":  # pragma: no cover - the whole tree, as the Go SDK's kill does not
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
                proc.kill()
            elif own_group:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(KILL_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.terminate()
                try:
                    proc.wait(KILL_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
        except (ProcessLookupError, PermissionError, OSError, subprocess.SubprocessError):
            pass
        try:
            proc.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass

    def run(self):
        """(exit code, stdout bytes or None when over the limit, stderr tail, timed out)"""
        argv = split_command(self.idp["command"], self.key)
        name = self.idp["name"]
        fds = self.ctx.terminal.terminal_fds() if self.idp["interactive"] else None
        own_group = fds is None  # sharing our terminal, it must stay in our (foreground) process group
        kwargs = {}
        if os.name == "nt":  # pragma: no cover
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        elif own_group:
            kwargs["start_new_session"] = True
        timeout = self.idp["timeout"]
        log.debug("running the command of idp %s: %s (%d arguments, timeout %d s, %s)", name, argv[0],
                  len(argv) - 1, timeout, "on the terminal" if fds else "stdin closed")
        try:
            proc = subprocess.Popen(argv, stdin=fds[0] if fds else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self._env(), close_fds=True, **kwargs)
        except FileNotFoundError:
            raise ConfigError(f"{self.key}: command not found: {short(clean(argv[0]))}",
                              hint="give the helper's full path, or put it on PATH") from None
        except PermissionError:
            raise ConfigError(f"{self.key}: not executable: {short(clean(argv[0]))}") from None
        except OSError as e:
            raise ConfigError(f"{self.key}: cannot run {short(clean(argv[0]))}: {e.strerror}") from None
        timed_out = False
        out = _Reader(proc.stdout, MAX_PROCESS_OUTPUT, on_overflow=lambda: self._kill(proc, own_group))
        err = _Reader(proc.stderr, MAX_STDERR, tail=True, tee=fds[1] if fds else None)
        try:
            out.start()
            err.start()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._kill(proc, own_group)
            out.join(PIPE_GRACE)
            err.join(PIPE_GRACE)
            if (out.is_alive() or err.is_alive()) and own_group:  # something it started holds a pipe open
                self._kill(proc, own_group)
                out.join(PIPE_GRACE)
                err.join(PIPE_GRACE)
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C) or failed while waiting: never leave it behind
                self._kill(proc, own_group)
            for reader in (out, err):
                # A pipe is closed only once its reader is done: closing it under a blocked read would
                # free the descriptor number for our next open(), which that read would then consume.
                if not reader.is_alive():
                    try:
                        reader.pipe.close()
                    except OSError:
                        pass
        stdout = None if out.overflow else bytes(out.data)
        return argv[0], proc.returncode, stdout, bytes(err.data), timed_out

    # -- what it printed ---------------------------------------------------------------------------
    def retrieve(self):
        name = self.idp["name"]
        attended = self.idp["interactive"] and self.ctx.terminal.terminal_fds() is not None
        started = time.monotonic()
        prog, code, stdout, stderr, timed_out = self.run()
        prog = short(clean(os.path.basename(prog) or prog), 60)
        log.debug("the command of idp %s ended with exit code %s after %.1f s", name, code, time.monotonic() - started)
        what = f"the command of idp {name} ({prog})"
        lines = [line for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
        detail = f": {clean(lines[-1].strip(), limit=300, line_limit=300)}" if lines else ""
        if timed_out:
            hint = ("it may be waiting for input: set interactive = true so that it gets the terminal"
                    if not self.idp["interactive"] else f"raise idp.{name}.timeout if it needs longer")
            raise ServiceError(f"{what} did not finish within {self.idp['timeout']} s and was stopped{detail}",
                               hint=hint)
        if stdout is None:
            raise ServiceError(f"{what} printed more than {MAX_PROCESS_OUTPUT // 1024} KiB on stdout and was stopped",
                               hint="its stdout must hold the credential_process JSON document and nothing else")
        if code != 0:
            if code == RecursionDetected.exit_code and any(RECURSION_MARK in line for line in lines):
                raise RecursionDetected(f"{what} runs credproc again, which refuses to recurse",
                                        hint="make the helper independent of credproc (e.g. not through an AWS "
                                             "profile that runs credproc)")
            status = f"was killed by signal {-code}" if code < 0 else f"failed with exit code {code}"
            if self.idp["interactive"] and not attended:
                raise LoginRequired(f"{what} {status}{detail}",
                                    hint=f"it may need to ask you something: run in a terminal: "
                                         f"{self.ctx.terminal.login_command}")
            raise AuthenticationFailed(f"{what} {status}{detail}")
        try:
            creds = parse_process_document(stdout)
        except ValueError as e:
            raise ServiceError(f"{what} printed no valid credential_process document on stdout: {e}",
                               hint='it must print {"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ..., '
                                    '"SessionToken": ..., "Expiration": ...} and nothing else') from None
        finally:
            del stdout
        now = self.ctx.now()
        if creds.expiration is not None and creds.expiration - now <= MIN_REMAINING:
            left = creds.expiration - now
            raise ServiceError(f"{what} returned credentials that " +
                               (f"expire in {left} s" if left > 0 else f"expired {-left} s ago"),
                               hint="SDKs reject credentials with 15 minutes or less left; check the system clock "
                                    "and the helper's session length")
        self._note_expiration(creds.expiration is None)
        return creds

    def _note_expiration(self, missing):
        """Remember (for `status`) whether the helper's credentials carry no Expiration: such
        credentials are never cached, so the helper runs on every call."""
        store, identity = self.ctx.store, no_expiration_identity(self.idp["name"])
        try:
            if missing:
                now = self.ctx.now()
                cfg = self.ctx.config
                store.put(identity, Entry(now + 400 * 86400, now, cfg.digest, cfg.idp_fingerprint(self.idp["name"]),
                                          b"no Expiration", written_at=now))
            else:
                store.delete(identity)
        except Exception as e:  # noqa: BLE001 - a note for `status`; the credentials are what matter
            log.debug("could not record whether idp %s's credentials expire: %s", self.idp["name"], type(e).__name__)
