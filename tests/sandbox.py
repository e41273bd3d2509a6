"""An isolated user for running the real credproc executable: its own HOME, XDG dirs, AWS files
and credproc config, and no controlling terminal unless a test gives it one."""

import json
import os
import shutil
import subprocess
import sys

STATIC_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
STATIC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def credproc_exe():
    exe = shutil.which("credproc", path=os.path.dirname(sys.executable))
    if not exe:
        raise RuntimeError("the credproc console script is not installed beside this interpreter (pip install -e .)")
    return exe


class Sandbox:
    def __init__(self, root):
        self.root = str(root)
        self.home = os.path.join(self.root, "home")
        os.makedirs(os.path.join(self.home, ".aws"), exist_ok=True)
        self.config_path = os.path.join(self.root, "credproc.toml")
        self.aws_config = os.path.join(self.home, ".aws", "config")
        self.aws_credentials = os.path.join(self.home, ".aws", "credentials")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": os.path.join(self.root, "xdg-config"),
            "XDG_CACHE_HOME": os.path.join(self.root, "xdg-cache"),
            "XDG_DATA_HOME": os.path.join(self.root, "xdg-data"),
            "AWS_CONFIG_FILE": self.aws_config,
            "AWS_SHARED_CREDENTIALS_FILE": self.aws_credentials,
            "CREDPROC_CONFIG": self.config_path,
        }
        for var in ("SYSTEMROOT", "TMPDIR"):
            if var in os.environ:
                self.env[var] = os.environ[var]

    @property
    def cache_dir(self):
        return os.path.join(self.env["XDG_CACHE_HOME"], "credproc")

    @property
    def key_path(self):
        return os.path.join(self.env["XDG_DATA_HOME"], "credproc", "cache.key")

    def cache_files(self):
        if not os.path.isdir(self.cache_dir):
            return []
        return sorted(n for n in os.listdir(self.cache_dir) if not n.endswith(".lock") and not n.startswith("."))

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def write_static_keys(self, profile="corp-user", key_id=STATIC_KEY_ID, secret=STATIC_SECRET):
        with open(self.aws_credentials, "a") as f:
            f.write(f"[{profile}]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")

    def add_aws_profile(self, name, role, endpoint_url, region="us-east-1", extra_args=""):
        with open(self.aws_config, "a") as f:
            f.write(f"[profile {name}]\ncredential_process = {credproc_exe()} --role {role}{extra_args}\n"
                    f"region = {region}\nendpoint_url = {endpoint_url}\n")

    def run(self, *args, timeout=60, env=None, **kw):
        kw.setdefault("start_new_session", True)  # no controlling terminal
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run([credproc_exe(), *args], env={**self.env, **(env or {})}, capture_output=True,
                              timeout=timeout, **kw)

    def popen(self, *args, env=None, **kw):
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen([credproc_exe(), *args], env={**self.env, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    def credentials(self, role, **kw):
        """Run `credproc --role ROLE`, assert success, return the parsed document."""
        r = self.run("--role", role, **kw)
        assert r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}"
        return json.loads(r.stdout)


def caller_arn(doc, sts_url):
    """Who a credential_process document's keys are, per STS GetCallerIdentity."""
    import boto3

    c = boto3.client("sts", endpoint_url=sts_url, region_name="us-east-1", aws_access_key_id=doc["AccessKeyId"],
                     aws_secret_access_key=doc["SecretAccessKey"], aws_session_token=doc.get("SessionToken"))
    return c.get_caller_identity()["Arn"]
