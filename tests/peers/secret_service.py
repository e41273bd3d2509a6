"""A real Secret Service on a private D-Bus session bus: dbus-daemon plus gnome-keyring-daemon,
started unlocked with a known password, in a throwaway home. Nothing touches the user's own bus
or keyrings; both daemons are stopped by PID.

    with SecretService(tmp_path) as ss:
        env = ss.env            # DBUS_SESSION_BUS_ADDRESS, XDG_* and HOME for credproc / secret-tool
        ss.lookup("corp")       # what secret-tool sees for service=credproc username=corp

Installed by tests/peers/install-keyring.sh (Debian: gnome-keyring, dbus, libsecret-tools, keyutils).
"""

import os
import shutil
import subprocess
import tempfile
import time

PASSWORD = b"credproc-test-keyring"
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={runtime}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
TOOLS = ("dbus-daemon", "gnome-keyring-daemon", "secret-tool")


def missing():
    """Why a real Secret Service cannot run here, or None."""
    absent = [t for t in TOOLS if not shutil.which(t)]
    if absent:
        return f"{', '.join(absent)} not installed (run tests/peers/install-keyring.sh as root)"
    return None


class SecretService:
    def __init__(self, root):
        self.root = os.path.join(str(root), "secret-service")
        self.procs = []
        self.env = {}

    def __enter__(self):
        root = self.root
        os.makedirs(root)
        # sockets live here (the bus's, the keyring's control socket): a short path, since a Unix
        # socket path may not exceed 107 bytes and pytest's tmp_path can come close
        runtime = self.runtime = tempfile.mkdtemp(prefix="cp-ss-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self.env = {
            "HOME": os.path.join(root, "home"),
            "XDG_RUNTIME_DIR": runtime,
            "XDG_DATA_HOME": os.path.join(root, "data"),
            "XDG_CONFIG_HOME": os.path.join(root, "config"),
            "XDG_CACHE_HOME": os.path.join(root, "cache"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        }
        os.makedirs(self.env["HOME"])
        # A bus with no service directories: nothing is started on demand (a stopped keyring stays
        # stopped, and no daemon we did not start can appear).
        bus_config = os.path.join(root, "bus.conf")
        with open(bus_config, "w") as f:
            f.write(BUS_CONFIG.format(runtime=runtime))
        try:
            bus = subprocess.Popen(["dbus-daemon", f"--config-file={bus_config}", "--nofork", "--print-address=1"],
                                   env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
            self.procs.append(bus)
            address = bus.stdout.readline().decode().strip()
            if not address:
                raise RuntimeError("dbus-daemon printed no address")
            self.env["DBUS_SESSION_BUS_ADDRESS"] = address
            self.start_daemon()
        except BaseException:
            self.stop()
            raise
        return self

    def start_daemon(self):
        """gnome-keyring-daemon: --unlock reads the login keyring's password on stdin and creates
        (or unlocks) that keyring as the default collection, where libsecret and keyring store items."""
        self.daemon = subprocess.Popen(["gnome-keyring-daemon", "--unlock", "--components=secrets", "--foreground"],
                                       env=self.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(self.daemon)
        self.daemon.stdin.write(PASSWORD)
        self.daemon.stdin.close()
        self._wait_ready()

    def stop_daemon(self):
        """Stop the keyring daemon only (the bus stays): the Secret Service is gone."""
        _stop(self.daemon)
        self.procs.remove(self.daemon)

    def _wait_ready(self, timeout=15):
        """Until a secret stored with secret-tool reads back (the login collection exists)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.procs[-1].poll() is not None:
                raise RuntimeError(f"gnome-keyring-daemon exited with {self.procs[-1].returncode}")
            r = subprocess.run(["secret-tool", "store", "--label=probe", "service", "credproc-test-probe"],
                               input=b"ready", env=self.env, capture_output=True, timeout=10)
            if r.returncode == 0 and self.lookup_raw("credproc-test-probe") == "ready":
                subprocess.run(["secret-tool", "clear", "service", "credproc-test-probe"], env=self.env, timeout=10)
                return
            last = r.stderr.decode(errors="replace").strip()
            time.sleep(0.2)
        raise RuntimeError(f"the Secret Service did not come up: {last}")

    def lookup_raw(self, service, **attrs):
        argv = ["secret-tool", "lookup", "service", service]
        for k, v in attrs.items():
            argv += [k, v]
        r = subprocess.run(argv, env=self.env, capture_output=True, timeout=10)
        return r.stdout.decode() if r.returncode == 0 else None

    def lookup(self, item):
        """What secret-tool sees for the credproc item `item` (None when there is none)."""
        return self.lookup_raw("credproc", username=item)

    def store(self, item, secret):
        subprocess.run(["secret-tool", "store", "--label=credproc test", "service", "credproc", "username", item],
                       input=secret.encode(), env=self.env, check=True, timeout=10)

    def clear(self, item):
        subprocess.run(["secret-tool", "clear", "service", "credproc", "username", item], env=self.env, timeout=10)

    def files(self):
        """Every file under the keyring daemon's home (to check what it wrote)."""
        out = []
        for d, _, names in os.walk(self.root):
            out += [os.path.join(d, n) for n in names]
        return out

    def stop(self):
        for p in reversed(self.procs):
            _stop(p)
        self.procs = []
        if getattr(self, "runtime", None):
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None

    def __exit__(self, *exc):
        self.stop()
