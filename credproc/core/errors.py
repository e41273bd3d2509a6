"""One exception hierarchy. Each class carries its exit code; `cli.main` is the only place that
turns them into exit codes. Messages are written for the user (what happened, what to do next)
and never contain a secret."""


class CredprocError(Exception):
    """Base of every error credproc reports to the user."""

    exit_code = 1
    title = "error"

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class UsageError(CredprocError):
    """A request that cannot be carried out as asked (a value a format cannot carry, a port in use)."""

    exit_code = 2
    title = "usage error"


class CommandNotRun(CredprocError):
    """credproc exec: the command could not be started (as a shell says: 127 not found, 126 not
    executable)."""

    title = "command not run"

    def __init__(self, message, exit_code=127, hint=None):
        super().__init__(message, hint)
        self.exit_code = exit_code


class ConfigError(CredprocError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 3
    title = "configuration error"


class LoginRequired(CredprocError):
    """A prompt (password, MFA code, browser login) is needed and there is no terminal to ask on."""

    exit_code = 4
    title = "login required"


class AuthenticationFailed(CredprocError):
    """The identity provider or STS rejected who we said we are: wrong password or MFA code,
    unknown or expired keys, revoked refresh token."""

    exit_code = 5
    title = "authentication failed"


class AccessDenied(CredprocError):
    """Authenticated, but not allowed: a trust policy, a role not granted to the user."""

    exit_code = 6
    title = "access denied"


class NetworkError(CredprocError):
    """The identity provider or STS could not be reached (DNS, refused, timeout, TLS)."""

    exit_code = 7
    title = "network error"


class LockTimeout(CredprocError):
    """Another credproc process held the refresh lock for too long."""

    exit_code = 8
    title = "busy"


class ServiceError(CredprocError):
    """The identity provider or STS answered with an error we have no better name for."""

    exit_code = 9
    title = "service error"


class RecursionDetected(CredprocError):
    """credproc was started by itself (a credential_process loop)."""

    exit_code = 10
    title = "recursion"


class LocalFileError(CredprocError):
    """A file credproc owns (key, cache) has wrong permissions or cannot be written."""

    exit_code = 11
    title = "file error"


class ChecksFailed(CredprocError):
    """credproc doctor: at least one check failed (each is listed with its fix)."""

    exit_code = 12
    title = "checks failed"


class KeyringUnavailable(CredprocError):
    """The OS keyring (Secret Service, Keychain, Credential Locker) is not there, is locked, or
    failed: the keys or the cache key kept in it cannot be read here."""

    exit_code = 13
    title = "keyring unavailable"


class OutputClosed(CredprocError):
    """Whoever reads stdout stopped reading before credproc finished writing (`| head`, or an SDK
    that gave up on its credential_process). credproc exits quietly: nobody is left to tell."""

    exit_code = 141  # as a shell reports a program ended by SIGPIPE (128 + 13)
    title = "output closed"


class OutputFailed(CredprocError):
    """stdout could not be written (a full disk, an I/O error): said in one line on stderr."""

    exit_code = 74  # EX_IOERR of sysexits.h
    title = "output failed"


class Interrupted(CredprocError):
    exit_code = 130
    title = "interrupted"


EXIT_CODES = [
    (0, "success: credentials printed (or, for `login`, a summary)"),
    (1, "unexpected internal error: a bug; run again with --debug and report it"),
    (2, "usage error: unknown option, missing argument, or a request that cannot be carried out as asked"),
    (ConfigError.exit_code, "configuration error: the message names the file, the key and the problem"),
    (LoginRequired.exit_code, "login required and no terminal to prompt on: run the `credproc login` command it prints"),
    (AuthenticationFailed.exit_code, "authentication failed: wrong or expired keys, MFA code, password or token"),
    (AccessDenied.exit_code, "access denied: authenticated, but the role or action is not allowed"),
    (NetworkError.exit_code, "identity provider or STS unreachable"),
    (LockTimeout.exit_code, "another credproc process held the refresh lock too long"),
    (ServiceError.exit_code, "the identity provider or STS returned an unexpected error"),
    (RecursionDetected.exit_code, "credproc was started by itself (credential_process loop)"),
    (LocalFileError.exit_code, "a key, cache or configuration file has unsafe permissions (others can read the key, or "
                                 "change the configuration) or cannot be written"),
    (ChecksFailed.exit_code, "credproc doctor: at least one check failed"),
    (KeyringUnavailable.exit_code, "the OS keyring is not available here, is locked, or failed"),
    (126, "credproc exec: the command is not executable"),
    (127, "credproc exec: the command was not found"),
    (OutputFailed.exit_code, "stdout could not be written (a full disk, an I/O error): one line on stderr says why"),
    (Interrupted.exit_code, "interrupted (Ctrl-C)"),
    (OutputClosed.exit_code, "stdout was closed before credproc finished writing (piped into `head`, or a consumer "
                             "that gave up): credproc exits quietly"),
]
