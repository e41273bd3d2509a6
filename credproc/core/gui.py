"""Dialogs instead of terminal prompts, opt-in with `[settings] prompt = "gui"`.

An IDE, a desktop launcher or a GUI git client runs credential_process with no terminal, where a
prompt would fail with exit 4. With prompt = "gui" and a desktop session, prompt.Terminal hands its
questions to a GuiPrompter here instead. One driver per dialog tool: zenity or kdialog (Linux, with
DISPLAY or WAYLAND_DISPLAY), osascript (macOS), Windows PowerShell.

Only the question goes into the dialog's argv (or, for PowerShell, its environment); the answer
comes back on the dialog's stdout and is never logged. Every dialog is bounded by a timeout.
"""

import os
import shutil
import subprocess
import sys

from . import log
from .errors import AuthenticationFailed, LoginRequired

TIMEOUT = 120  # seconds a dialog waits for an answer
SAY_TIMEOUT = 60  # seconds a message stays up, where the tool can close it by itself
GRACE = 5  # beyond TIMEOUT, for tools that have no timeout of their own (or ignore it)
TITLE = "credproc"
TEXT_VAR = "CREDPROC_DIALOG_TEXT"


class Zenity:
    name = "zenity"

    def __init__(self, exe):
        self.exe = exe

    def ask(self, prompt, secret, timeout):
        # --entry --hide-text rather than --password: --password cannot show which secret is asked for
        argv = [self.exe, "--entry", f"--title={TITLE}", f"--text={prompt}", f"--timeout={timeout}"]
        return argv + (["--hide-text"] if secret else []), {}

    def choose(self, title, options, timeout):
        rows = [x for i, option in enumerate(options, 1) for x in (str(i), option)]
        return [self.exe, "--list", f"--title={TITLE}", f"--text={title}", "--column=#", "--column=Choice",
                "--hide-column=1", "--print-column=1", "--width=700", "--height=350", f"--timeout={timeout}", *rows], {}

    def say(self, message, timeout):
        return [self.exe, "--info", f"--title={TITLE}", f"--text={message}", "--no-markup", f"--timeout={timeout}"], {}

    def notify(self, message, timeout):
        return [self.exe, "--notification", f"--text={TITLE}: {message}", f"--timeout={timeout}"], {}

    def outcome(self, returncode, stderr):
        return {0: "ok", 1: "cancel", 5: "timeout"}.get(returncode, "error")


class KDialog:
    name = "kdialog"

    def __init__(self, exe):
        self.exe = exe

    def ask(self, prompt, secret, timeout):
        return [self.exe, "--title", TITLE, "--password" if secret else "--inputbox", prompt], {}

    def choose(self, title, options, timeout):
        rows = [x for i, option in enumerate(options, 1) for x in (str(i), option)]
        return [self.exe, "--title", TITLE, "--menu", title, *rows], {}

    def say(self, message, timeout):
        return [self.exe, "--title", TITLE, "--passivepopup", message, str(timeout)], {}

    def outcome(self, returncode, stderr):
        return {0: "ok", 1: "cancel"}.get(returncode, "error")


class OsaScript:
    """The question is passed as a script argument (`on run argv`): no quoting into AppleScript."""

    name = "osascript"
    GAVE_UP = 1712  # our own error number: the dialog timed out

    def __init__(self, exe):
        self.exe = exe

    def _script(self, *lines):
        argv = [self.exe]
        for line in ("on run argv", *lines, "end run"):
            argv += ["-e", line]
        return argv

    def ask(self, prompt, secret, timeout):
        hidden = " with hidden answer" if secret else ""
        return self._script(
            f'set r to display dialog (item 1 of argv) default answer ""{hidden} with title "{TITLE}" giving up after {timeout}',
            f'if gave up of r then error "no answer" number {self.GAVE_UP}',
            "return text returned of r") + [prompt], {}

    def choose(self, title, options, timeout):
        return self._script(
            f'set r to choose from list (items 2 thru -1 of argv) with prompt (item 1 of argv) with title "{TITLE}"',
            "if r is false then error number -128",
            "return item 1 of r") + [title] + [f"{i}) {option}" for i, option in enumerate(options, 1)], {}

    def say(self, message, timeout):
        return self._script(f'display notification (item 1 of argv) with title "{TITLE}"') + [message], {}

    def outcome(self, returncode, stderr):
        if returncode == 0:
            return "ok"
        if "(-128)" in stderr:  # "User canceled."
            return "cancel"
        return "timeout" if f"({self.GAVE_UP})" in stderr else "error"


class PowerShell:
    """Windows PowerShell. Read-Host needs a console, so: an InputBox, or Get-Credential's dialog for a
    secret. The question travels in an environment variable, never spliced into the script."""

    name = "PowerShell"
    PREFIX = "[Console]::OutputEncoding = [Text.Encoding]::UTF8; "
    ASK = ("Add-Type -AssemblyName Microsoft.VisualBasic; "
           f"$a = [Microsoft.VisualBasic.Interaction]::InputBox($env:{TEXT_VAR}, '{TITLE}', ''); "
           "if ([string]::IsNullOrEmpty($a)) { exit 1 }; [Console]::Out.WriteLine($a)")
    ASK_SECRET = (f"$c = Get-Credential -UserName '{TITLE}' -Message $env:{TEXT_VAR}; "
                  "if ($null -eq $c) { exit 1 }; [Console]::Out.WriteLine($c.GetNetworkCredential().Password)")
    SAY = (f"Add-Type -AssemblyName System.Windows.Forms; "
           f"[void][System.Windows.Forms.MessageBox]::Show($env:{TEXT_VAR}, '{TITLE}')")

    def __init__(self, exe):
        self.exe = exe

    def _command(self, script, text):
        return [self.exe, "-NoLogo", "-NoProfile", "-Command", self.PREFIX + script], {TEXT_VAR: text}

    def ask(self, prompt, secret, timeout):
        return self._command(self.ASK_SECRET if secret else self.ASK, prompt)

    def choose(self, title, options, timeout):
        return None  # no list dialog in the box: GuiPrompter asks for the number instead

    def say(self, message, timeout):
        return self._command(self.SAY, message)

    def outcome(self, returncode, stderr):
        return {0: "ok", 1: "cancel"}.get(returncode, "error")


def detect(login_command, env=None, platform=None, which=None):
    """A GuiPrompter when this is a desktop session with a dialog tool, else None (and prompts keep
    failing fast without a terminal)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    path = env.get("PATH")
    which = which or (lambda name: shutil.which(name, path=path))
    driver = None
    if platform == "win32":
        exe = which("powershell")
        driver = exe and PowerShell(exe)
    elif platform == "darwin":
        # Over SSH a dialog would open on the Mac's own screen, for whoever sits there (or nobody).
        exe = None if env.get("SSH_CONNECTION") or env.get("SSH_TTY") else which("osascript")
        driver = exe and OsaScript(exe)
    elif env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        kinds = [(Zenity, "zenity"), (KDialog, "kdialog")]
        if "KDE" in env.get("XDG_CURRENT_DESKTOP", "").upper():
            kinds.reverse()
        for kind, name in kinds:
            exe = which(name)
            if exe:
                driver = kind(exe)
                break
    if not driver:
        log.debug("prompt = \"gui\", but no desktop session with a dialog tool was found: no dialogs")
        return None
    log.debug("prompts without a terminal use %s dialogs", driver.name)
    return GuiPrompter(driver, login_command)


class GuiPrompter:
    """The ask/choose/say half of prompt.Terminal, as dialogs."""

    def __init__(self, driver, login_command, timeout=TIMEOUT):
        self.driver = driver
        self.login_command = login_command
        self.timeout = timeout

    def ask(self, prompt, what, secret=False):
        argv, extra = self.driver.ask(prompt.strip(), secret, self.timeout)
        return self._run(argv, extra, what)

    def choose(self, title, options, what):
        spec = self.driver.choose(title, options, self.timeout)
        n = len(options)
        if spec is None:
            numbered = "\n".join([title] + [f"  {i}) {option}" for i, option in enumerate(options, 1)])
            for _ in range(3):
                answer = self.ask(f"{numbered}\nChoose 1-{n}:", what).strip()
                if answer.isdigit() and 1 <= int(answer) <= n:
                    return int(answer) - 1
            raise AuthenticationFailed(f"no valid choice for {what}")
        answer = self._run(*spec, what).strip()
        digits = answer[:len(answer) - len(answer.lstrip("0123456789"))]  # "2" or "2) arn:..."
        if not digits or not 1 <= int(digits) <= n:
            raise AuthenticationFailed(f"no valid choice for {what} (nothing was selected in the dialog)")
        return int(digits) - 1

    def say(self, message):
        """Non-blocking: the message stays up on its own while the caller carries on."""
        self._show(*self.driver.say(message, SAY_TIMEOUT))

    def notify(self, message):
        """A desktop notification (e.g. "approve the Duo push"), where the tool has one; else say()."""
        notify = getattr(self.driver, "notify", None) or self.driver.say
        self._show(*notify(message, SAY_TIMEOUT))

    def _show(self, argv, extra):
        try:
            # Never the caller's stdout/stderr: under credential_process stdout is the protocol pipe,
            # and a dialog still holding it would keep the SDK waiting.
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, **extra}, start_new_session=os.name == "posix")
        except OSError as e:
            log.debug("could not show a message with %s: %s", self.driver.name, type(e).__name__)

    def _run(self, argv, extra, what):
        name = self.driver.name
        hint = f"run in a terminal: {self.login_command}"
        log.debug("asking for %s in a %s dialog", what, name)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, **extra}, timeout=self.timeout + GRACE)
        except subprocess.TimeoutExpired:  # the tool's own timeout should have fired first
            raise LoginRequired(f"{what} is needed and the {name} dialog got no answer within {self.timeout} s",
                                hint=hint) from None
        except OSError as e:
            raise LoginRequired(f"{what} is needed, there is no terminal, and the {name} dialog could not be started "
                                f"({e.strerror or type(e).__name__})", hint=hint) from None
        # stderr is the tool's diagnostics (GTK warnings, "User canceled"), never the answer
        err = proc.stderr.decode(errors="replace")
        outcome = self.driver.outcome(proc.returncode, err)
        if outcome == "cancel":
            raise AuthenticationFailed(f"the {name} dialog asking for {what} was cancelled")
        if outcome == "timeout":
            raise LoginRequired(f"{what} is needed and the {name} dialog got no answer within {self.timeout} s",
                                hint=hint)
        if outcome != "ok":
            lines = err.strip().splitlines()
            detail = f": {lines[-1][:200]}" if lines else ""
            raise LoginRequired(f"{what} is needed, there is no terminal, and the {name} dialog failed "
                                f"(exit code {proc.returncode}{detail})", hint=hint)
        text = proc.stdout.decode("utf-8", errors="replace")
        return text.split("\n", 1)[0].rstrip("\r")
