"""The real consumers of a credential_process, run as separate processes.

Each function takes `env` (the complete environment for the consumer: HOME, AWS_CONFIG_FILE,
AWS_SHARED_CREDENTIALS_FILE, XDG_* ... prepared by the test; nothing is inherited from this process
except PATH when `env` has none) and a profile name, makes the consumer resolve that profile's
credential_process and call STS GetCallerIdentity, and returns the caller `Arn`. On failure it
raises AssertionError carrying the consumer's full stdout and stderr. Every run has a timeout, after
which the consumer's whole process group (the consumer, its plugins and the credential_process it
started) is killed.

    aws_cli_caller_arn(env, profile)          AWS CLI v1 from this venv
    boto3_caller_arn(env, profile)            boto3 in a subprocess
    js_sdk_caller_arn(env, profile)           AWS SDK for JavaScript v3 (tests/node/caller-identity.mjs)
    terraform_caller_arn(env, profile, sts_url, workdir)
                                              Terraform + hashicorp/aws, data "aws_caller_identity"
    node_available(), terraform_available()   -> (bool, reason), for pytest.skip(reason)

More consumers, from Debian (tests/peers/install-consumers.sh) and npm, each making ONE client and
calling GetCallerIdentity `calls` times on it (default 2); they return the list of caller ARNs, one
per call. None of them reads an endpoint from the profile, so each takes the STS URL explicitly:

    aws_cli_v2_caller_arn(env, profile, sts_url)     AWS CLI v2 (/usr/bin/aws, Debian awscli 2.9),
                                                     one call per run (`--endpoint-url`)
    go_sdk_caller_arns(version, env, profile, sts_url, calls=2)
                                                     AWS SDK for Go "v1" or "v2" (tests/go/sdkv1,
                                                     sdkv2), built once per test run in GOPATH mode
    ruby_sdk_caller_arns(env, profile, sts_url, calls=2)
                                                     AWS SDK for Ruby v3 (tests/ruby/caller_identity.rb)
    js_sdk_v2_caller_arns(env, profile, sts_url, calls=2)
                                                     AWS SDK for JavaScript v2 (tests/node/caller-identity-v2.cjs)
    aws_cli_v2_available(), go_sdk_available(version), ruby_sdk_available(), js_sdk_v2_available()
    write_counting_wrapper(path, log, target)        a credential_process that logs each run, then
                                                     execs target: count_runs(log) says how often a
                                                     consumer ran it

Endpoints: the AWS CLI v1, boto3 and the JS SDK v3 all honour `endpoint_url` in the profile of the
shared config file, so the test's config points the profile at moto. The JS SDK, though, takes
`endpoint_url` only from the profile named by AWS_PROFILE (or [default]), whatever profile the client
or fromProcess is given: js_sdk_caller_arn sets AWS_PROFILE=profile in the consumer's environment (the
credential_process then inherits it, as it would for a user who exports AWS_PROFILE). It also accepts
`sts_url=`, passed as CREDPROC_TEST_STS_URL, to set the endpoint explicitly. Terraform's provider is
given `endpoints { sts, iam }` explicitly.

See ../shared/reference/consumers.md for how each SDK runs the process.
"""

import atexit
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_DIR = os.path.join(TESTS_DIR, "node")
NODE_SCRIPT = os.path.join(NODE_DIR, "caller-identity.mjs")
NODE_V2_SCRIPT = os.path.join(NODE_DIR, "caller-identity-v2.cjs")
GO_DIR = os.path.join(TESTS_DIR, "go")
RUBY_SCRIPT = os.path.join(TESTS_DIR, "ruby", "caller_identity.rb")

# The Debian AWS CLI v2, by absolute path: the `aws` on PATH in the test venv is the PyPI AWS CLI v1.
AWS_CLI_V2 = "/usr/bin/aws"
# Debian's Go source trees (golang-github-aws-aws-sdk-go{,-v2}-dev); GOPATH mode, no network.
DEBIAN_GOPATH = "/usr/share/gocode"
GO_SDK_IMPORT = {"v1": "github.com/aws/aws-sdk-go", "v2": "github.com/aws/aws-sdk-go-v2"}
GO_BUILD_TIMEOUT = 300.0

DEFAULT_TIMEOUT = 60.0
TF_INIT_TIMEOUT = 120.0
TF_APPLY_TIMEOUT = 180.0

# Where a filesystem mirror of the hashicorp/aws provider may live (each the directory that holds
# registry.terraform.io/); CREDPROC_TF_MIRROR overrides.
_TF_MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "/opt/terraform-plugins",
    "/opt/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/opt",
    "/usr/local/share",
    "/usr/share",
)


# --------------------------------------------------------------------------------------------
# running a consumer


class ConsumerResult:
    def __init__(self, argv, returncode, stdout, stderr, timed_out=False):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out

    def describe(self, what):
        status = "timed out" if self.timed_out else f"exited with {self.returncode}"
        return (
            f"{what} {status}\n"
            f"command: {' '.join(self.argv)}\n"
            f"--- stdout ---\n{self.stdout}\n"
            f"--- stderr ---\n{self.stderr}"
        )


def _full_env(env):
    env = {str(k): str(v) for k, v in env.items()}
    if "PATH" not in env:
        # Go's os/exec (Terraform's provider runs the process with `sh -c`) and npm tooling look
        # programs up on PATH.
        env["PATH"] = os.environ.get("PATH", os.defpath)
    return env


def _run(argv, env, timeout, cwd=None):
    """Run argv in its own process group; on timeout kill that group. Never raises on failure."""
    kwargs = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        if os.name == "posix":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            proc.kill()
        out, err = proc.communicate()
    return ConsumerResult(
        argv,
        proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        timed_out,
    )


def _check(result, what):
    if result.timed_out or result.returncode != 0:
        raise AssertionError(result.describe(what))
    return result


def _arn_from_json(result, what):
    try:
        doc = json.loads(result.stdout)
        arn = doc["Arn"]
    except (ValueError, KeyError, TypeError) as e:
        raise AssertionError(result.describe(f"{what} printed no Arn ({e!r});")) from None
    if not isinstance(arn, str) or not arn:
        raise AssertionError(result.describe(f"{what} printed an empty Arn;"))
    return arn


def _arn_from_line(result, what):
    arn = result.stdout.strip()
    if not arn or "\n" in arn:
        raise AssertionError(result.describe(f"{what} did not print exactly one ARN;"))
    return arn


# --------------------------------------------------------------------------------------------
# AWS CLI v1 and boto3


def aws_cli_path():
    """The `aws` script of the venv this test runs in (beside sys.executable)."""
    bindir = os.path.dirname(sys.executable)
    path = os.path.join(bindir, "aws")
    if os.path.isfile(path):
        return path
    found = shutil.which("aws", path=bindir)
    if found:
        return found
    raise AssertionError(f"no `aws` (PyPI awscli) beside {sys.executable}")


def aws_cli_caller_arn(env, profile, timeout=DEFAULT_TIMEOUT):
    # Run the script with this interpreter: no dependence on its shebang.
    argv = [sys.executable, aws_cli_path(), "--profile", profile, "sts", "get-caller-identity", "--output", "json"]
    result = _check(_run(argv, _full_env(env), timeout), "aws sts get-caller-identity")
    return _arn_from_json(result, "aws sts get-caller-identity")


_BOTO3_SNIPPET = textwrap.dedent(
    """
    import json, sys
    import boto3
    session = boto3.Session(profile_name=sys.argv[1])
    ident = session.client("sts").get_caller_identity()
    ident.pop("ResponseMetadata", None)
    print(json.dumps(ident))
    """
)


def boto3_caller_arn(env, profile, timeout=DEFAULT_TIMEOUT):
    argv = [sys.executable, "-c", _BOTO3_SNIPPET, profile]
    result = _check(_run(argv, _full_env(env), timeout), "boto3 get_caller_identity")
    return _arn_from_json(result, "boto3 get_caller_identity")


# --------------------------------------------------------------------------------------------
# AWS SDK for JavaScript v3


def _node_exe():
    return shutil.which("node")


def node_available():
    node = _node_exe()
    if not node:
        return False, "node is not on PATH"
    for pkg in ("@aws-sdk/client-sts", "@aws-sdk/credential-providers"):
        if not os.path.isfile(os.path.join(NODE_DIR, "node_modules", *pkg.split("/"), "package.json")):
            return False, f"{pkg} is not installed in {NODE_DIR}/node_modules (run npm ci there)"
    if not os.path.isfile(NODE_SCRIPT):
        return False, f"{NODE_SCRIPT} is missing"
    return True, f"node at {node}"


def js_sdk_caller_arn(env, profile, timeout=DEFAULT_TIMEOUT, sts_url=None):
    """fromProcess({profile}) + STSClient({profile}); the endpoint comes from `endpoint_url` in the
    profile unless sts_url is given."""
    ok, reason = node_available()
    if not ok:
        raise AssertionError(f"the JS SDK consumer cannot run: {reason}")
    env = _full_env(env)
    # The JS SDK reads `endpoint_url` (and AWS_ENDPOINT_URL_* aside) from the profile named by
    # AWS_PROFILE (else [default]) only: the client's own `profile` option does not select the
    # profile for the configured endpoint. So name the profile in the environment too.
    env["AWS_PROFILE"] = profile
    if sts_url:
        env["CREDPROC_TEST_STS_URL"] = sts_url
    argv = [_node_exe(), NODE_SCRIPT, profile]
    result = _check(_run(argv, env, timeout, cwd=NODE_DIR), "node caller-identity.mjs")
    return _arn_from_line(result, "node caller-identity.mjs")


# --------------------------------------------------------------------------------------------
# Terraform


def _terraform_exe():
    return shutil.which("terraform") or (
        "/usr/local/bin/terraform" if os.access("/usr/local/bin/terraform", os.X_OK) else None
    )


def _is_mirror_root(root):
    return os.path.isdir(os.path.join(root, "registry.terraform.io", "hashicorp", "aws"))


def find_tf_mirror():
    """The filesystem-mirror root (the directory holding registry.terraform.io/) with hashicorp/aws,
    or None. CREDPROC_TF_MIRROR, else a shallow search under a few usual roots."""
    explicit = os.environ.get("CREDPROC_TF_MIRROR")
    if explicit:
        return os.path.abspath(explicit) if _is_mirror_root(explicit) else None
    for cand in _TF_MIRROR_CANDIDATES:
        root = os.path.expanduser(cand)
        if not os.path.isdir(root):
            continue
        if _is_mirror_root(root):
            return root
        # one or two levels below (e.g. /opt/<something>/registry.terraform.io)
        for depth1 in _listdirs(root):
            if _is_mirror_root(depth1):
                return depth1
            for depth2 in _listdirs(depth1):
                if _is_mirror_root(depth2):
                    return depth2
    return None


def _listdirs(path):
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    return [os.path.join(path, n) for n in names if os.path.isdir(os.path.join(path, n))]


def terraform_available():
    exe = _terraform_exe()
    if not exe:
        return False, "terraform is not on PATH"
    mirror = find_tf_mirror()
    if not mirror:
        where = os.environ.get("CREDPROC_TF_MIRROR") or ", ".join(_TF_MIRROR_CANDIDATES)
        return False, (
            "no filesystem mirror of registry.terraform.io/hashicorp/aws found "
            f"(looked in {where}; set CREDPROC_TF_MIRROR to the directory holding registry.terraform.io/)"
        )
    return True, f"terraform at {exe}, provider mirror at {mirror}"


def _hcl_string(value):
    """A quoted HCL string literal (JSON escapes, with template sequences escaped)."""
    return json.dumps(str(value)).replace("${", "$${").replace("%{", "%%{")


def _tf_cli_config(mirror):
    return textwrap.dedent(
        f"""\
        provider_installation {{
          filesystem_mirror {{
            path    = {_hcl_string(mirror)}
            include = ["registry.terraform.io/hashicorp/aws"]
          }}
          direct {{
            exclude = ["registry.terraform.io/hashicorp/aws"]
          }}
        }}
        """
    )


def _tf_main(env, profile, sts_url, region, skip_credentials_validation, skip_requesting_account_id, max_retries):
    config_file = env.get("AWS_CONFIG_FILE") or os.path.join(env["HOME"], ".aws", "config")
    lines = [
        "terraform {",
        "  required_providers {",
        '    aws = { source = "hashicorp/aws" }',
        "  }",
        "}",
        "",
        'provider "aws" {',
        f"  profile                     = {_hcl_string(profile)}",
        f"  shared_config_files         = [{_hcl_string(config_file)}]",
    ]
    if env.get("AWS_SHARED_CREDENTIALS_FILE"):
        lines.append(f"  shared_credentials_files    = [{_hcl_string(env['AWS_SHARED_CREDENTIALS_FILE'])}]")
    lines += [
        f"  region                      = {_hcl_string(region)}",
        "  skip_region_validation      = true",
        "  skip_metadata_api_check     = true",
        f"  max_retries                 = {int(max_retries)}",
        f"  skip_credentials_validation = {str(bool(skip_credentials_validation)).lower()}",
        f"  skip_requesting_account_id  = {str(bool(skip_requesting_account_id)).lower()}",
        "  endpoints {",
        f"    sts = {_hcl_string(sts_url)}",
        f"    iam = {_hcl_string(sts_url)}",
        "  }",
        "}",
        "",
        'data "aws_caller_identity" "me" {}',
        "",
        'output "arn" {',
        "  value = data.aws_caller_identity.me.arn",
        "}",
        "",
    ]
    return "\n".join(lines)


def terraform_caller_arn(
    env,
    profile,
    sts_url,
    workdir,
    region="us-east-1",
    skip_credentials_validation=False,
    skip_requesting_account_id=False,
    max_retries=1,
    plugin_cache_dir=None,
    init_timeout=TF_INIT_TIMEOUT,
    apply_timeout=TF_APPLY_TIMEOUT,
):
    """Terraform with hashicorp/aws from the filesystem mirror; `data "aws_caller_identity"`.

    Writes main.tf and a CLI config into workdir, runs `terraform init`, `terraform apply` and
    `terraform output -raw arn`. The provider is configured in the plan and again in the apply
    phase, so one call runs the credential_process twice (no SDK caches process results across
    provider instances). By default the provider also validates the credentials and looks up the
    account id (one STS GetCallerIdentity per provider configuration, so 3 calls in all with the
    data source's), as a user's configuration would; skip_* = True leaves the data source's one.
    max_retries=1 makes a failure (e.g. an unreachable endpoint) fail fast instead of retrying for
    half a minute. An unpacked filesystem mirror is symlinked into .terraform, not copied, so
    init takes under a second and a plugin cache (plugin_cache_dir) gains nothing; the time goes
    to starting the 600 MB provider binary (about 3 s each, 3 or 4 times per apply).
    """
    ok, reason = terraform_available()
    if not ok:
        raise AssertionError(f"the Terraform consumer cannot run: {reason}")
    exe = _terraform_exe()
    mirror = find_tf_mirror()
    workdir = os.path.abspath(str(workdir))
    os.makedirs(workdir, exist_ok=True)
    env = _full_env(env)
    if "HOME" not in env:
        raise AssertionError("terraform_caller_arn needs HOME in env")

    cli_config = os.path.join(workdir, "credproc-test.tfrc")
    with open(cli_config, "w", encoding="utf-8") as f:
        f.write(_tf_cli_config(mirror))
    with open(os.path.join(workdir, "main.tf"), "w", encoding="utf-8") as f:
        f.write(_tf_main(env, profile, sts_url, region, skip_credentials_validation, skip_requesting_account_id, max_retries))

    env.update(
        TF_CLI_CONFIG_FILE=cli_config,
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    if plugin_cache_dir:
        os.makedirs(str(plugin_cache_dir), exist_ok=True)
        env["TF_PLUGIN_CACHE_DIR"] = str(plugin_cache_dir)

    def step(args, timeout, what):
        return _check(_run([exe] + args, env, timeout, cwd=workdir), what)

    step(["init", "-input=false", "-no-color"], init_timeout, "terraform init")
    step(["apply", "-auto-approve", "-input=false", "-no-color", "-lock=false"], apply_timeout, "terraform apply")
    result = step(["output", "-raw", "-no-color", "arn"], DEFAULT_TIMEOUT, "terraform output")
    return _arn_from_line(result, "terraform output -raw arn")


# --------------------------------------------------------------------------------------------
# counting how often a consumer runs the credential_process


def write_counting_wrapper(path, log, target):
    """Write an executable sh script at `path` that appends one line to `log` each time it runs,
    then execs `target` (a list: the real credential_process argv) with its own arguments. Use
    `path` in place of the real program in the profile's credential_process line."""
    path, log = str(path), str(log)
    for p in [path, log] + [str(t) for t in target]:
        # the consumers split the line with shlex or sh, and Go cuts it at `#`/`;`
        if any(c in p for c in " #;'\"\\$`"):
            raise ValueError(f"unusable in a credential_process line: {p!r}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            "#!/bin/sh\n"
            "# one line per run, then the real credential_process (same pid, same streams)\n"
            f"echo \"$$\" >> {shlex.quote(log)}\n"
            f"exec {' '.join(shlex.quote(str(t)) for t in target)} \"$@\"\n"
        )
    os.chmod(path, 0o755)
    return path


def count_runs(log):
    try:
        with open(str(log), encoding="utf-8") as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def _arns_from_json_lines(result, what, calls):
    arns = []
    lines = result.stdout.splitlines()
    if len(lines) != calls:
        raise AssertionError(result.describe(f"{what} printed {len(lines)} lines for {calls} calls;"))
    for line in lines:
        try:
            arn = json.loads(line)["Arn"]
        except (ValueError, KeyError, TypeError) as e:
            raise AssertionError(result.describe(f"{what} printed no Arn ({e!r});")) from None
        if not isinstance(arn, str) or not arn:
            raise AssertionError(result.describe(f"{what} printed an empty Arn;"))
        arns.append(arn)
    return arns


def _calls_arg(calls):
    calls = int(calls)
    if calls < 1:
        raise ValueError("calls must be at least 1")
    return str(calls)


# --------------------------------------------------------------------------------------------
# AWS CLI v2 (Debian awscli)


def aws_cli_v2_available():
    if not os.access(AWS_CLI_V2, os.X_OK):
        return False, f"{AWS_CLI_V2} (the AWS CLI v2, Debian package awscli) is not installed: run tests/peers/install-consumers.sh as root"
    try:
        r = subprocess.run([AWS_CLI_V2, "--version"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{AWS_CLI_V2} --version failed: {e}"
    version = (r.stdout + r.stderr).decode("utf-8", "replace").strip()
    if r.returncode != 0 or not version.startswith("aws-cli/2."):
        return False, f"{AWS_CLI_V2} is not the AWS CLI v2: --version says {version!r} (exit {r.returncode})"
    return True, version


def aws_cli_v2_caller_arn(env, profile, sts_url, timeout=DEFAULT_TIMEOUT):
    """One `aws sts get-caller-identity` (one process, one call). The CLI v2 2.9 reads no
    `endpoint_url` from the profile: the endpoint goes on the command line."""
    ok, reason = aws_cli_v2_available()
    if not ok:
        raise AssertionError(f"the AWS CLI v2 consumer cannot run: {reason}")
    argv = [AWS_CLI_V2, "--profile", profile, "--endpoint-url", sts_url, "sts", "get-caller-identity",
            "--output", "json", "--no-cli-pager"]
    env = _full_env(env)
    env.setdefault("AWS_MAX_ATTEMPTS", "1")
    result = _check(_run(argv, env, timeout), "aws (v2) sts get-caller-identity")
    return _arn_from_json(result, "aws (v2) sts get-caller-identity")


# --------------------------------------------------------------------------------------------
# AWS SDK for Go v1 and v2 (Debian golang-go and golang-github-aws-aws-sdk-go{,-v2}-dev)

_go_builds = {}  # version -> built executable, for this test process


def _go_exe():
    return shutil.which("go") or ("/usr/lib/go/bin/go" if os.access("/usr/lib/go/bin/go", os.X_OK) else None)


def go_sdk_available(version):
    if version not in GO_SDK_IMPORT:
        raise ValueError(f"no Go SDK {version!r}: {sorted(GO_SDK_IMPORT)}")
    if not _go_exe():
        return False, "go is not installed (Debian golang-go): run tests/peers/install-consumers.sh as root"
    tree = os.path.join(DEBIAN_GOPATH, "src", GO_SDK_IMPORT[version])
    if not os.path.isdir(tree):
        package = "golang-github-aws-aws-sdk-go-v2-dev" if version == "v2" else "golang-github-aws-aws-sdk-go-dev"
        return False, f"the AWS SDK for Go {version} is not in {tree} (Debian {package}): run tests/peers/install-consumers.sh as root"
    return True, f"go at {_go_exe()}, SDK {version} in {tree}"


def _go_build_env():
    env = dict(os.environ)
    # GOPATH mode against Debian's source trees: nothing is downloaded, go.mod files are ignored.
    env.update(GO111MODULE="off", GOPATH=DEBIAN_GOPATH, GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
    if not env.get("GOCACHE") and not env.get("HOME") and not env.get("XDG_CACHE_HOME"):
        env["GOCACHE"] = os.path.join(_go_build_dir(), "cache")
    return env


_go_tmp = []


def _go_build_dir():
    if not _go_tmp:
        path = tempfile.mkdtemp(prefix="credproc-go-consumers-")
        atexit.register(shutil.rmtree, path, True)
        _go_tmp.append(path)
    return _go_tmp[0]


def go_consumer(version, timeout=GO_BUILD_TIMEOUT):
    """The caller-identity program for Go SDK `version` ("v1" or "v2"), built on first use in this
    process into a temporary directory (removed at exit)."""
    ok, reason = go_sdk_available(version)
    if not ok:
        raise AssertionError(f"the Go SDK {version} consumer cannot be built: {reason}")
    if version not in _go_builds:
        out = os.path.join(_go_build_dir(), f"caller-identity-{version}")
        argv = [_go_exe(), "build", "-o", out, "."]
        result = _check(_run(argv, _go_build_env(), timeout, cwd=os.path.join(GO_DIR, "sdk" + version)),
                        f"go build (SDK {version})")
        if not os.access(out, os.X_OK):
            raise AssertionError(result.describe(f"go build (SDK {version}) made no {out};"))
        _go_builds[version] = out
    return _go_builds[version]


def go_sdk_caller_arns(version, env, profile, sts_url, calls=2, timeout=DEFAULT_TIMEOUT):
    """Go SDK `version`: shared config for `profile`, ONE STS client with `sts_url` set in code,
    `calls` GetCallerIdentity calls."""
    exe = go_consumer(version)
    what = f"caller-identity-{version} (Go SDK {version})"
    result = _check(_run([exe, profile, sts_url, _calls_arg(calls)], _full_env(env), timeout), what)
    return _arns_from_json_lines(result, what, int(calls))


# --------------------------------------------------------------------------------------------
# AWS SDK for Ruby v3 (Debian ruby-aws-sdk-core)


def _ruby_exe():
    return shutil.which("ruby")


def ruby_sdk_available():
    if not _ruby_exe():
        return False, "ruby is not installed (Debian ruby-aws-sdk-core brings it): run tests/peers/install-consumers.sh as root"
    try:
        r = subprocess.run([_ruby_exe(), "-e", "require 'aws-sdk-core'; print Aws::CORE_GEM_VERSION"],
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"ruby could not load aws-sdk-core: {e}"
    if r.returncode != 0:
        return False, ("ruby cannot load aws-sdk-core (Debian ruby-aws-sdk-core): "
                       f"{r.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return True, f"ruby at {_ruby_exe()}, aws-sdk-core {r.stdout.decode().strip()}"


def ruby_sdk_caller_arns(env, profile, sts_url, calls=2, timeout=DEFAULT_TIMEOUT):
    """Ruby SDK v3: ONE Aws::STS::Client for `profile` (its credential_process through the default
    chain), `sts_url` set in code, `calls` GetCallerIdentity calls."""
    ok, reason = ruby_sdk_available()
    if not ok:
        raise AssertionError(f"the Ruby SDK consumer cannot run: {reason}")
    what = "ruby caller_identity.rb"
    argv = [_ruby_exe(), RUBY_SCRIPT, profile, sts_url, _calls_arg(calls)]
    result = _check(_run(argv, _full_env(env), timeout), what)
    return _arns_from_json_lines(result, what, int(calls))


# --------------------------------------------------------------------------------------------
# AWS SDK for JavaScript v2 (npm aws-sdk, in tests/node beside v3)


def js_sdk_v2_available():
    node = _node_exe()
    if not node:
        return False, "node is not on PATH"
    if not os.path.isfile(os.path.join(NODE_DIR, "node_modules", "aws-sdk", "package.json")):
        return False, f"aws-sdk (v2) is not installed in {NODE_DIR}/node_modules (run npm ci there)"
    return True, f"node at {node}"


def js_sdk_v2_caller_arns(env, profile, sts_url, calls=2, timeout=DEFAULT_TIMEOUT):
    """JS SDK v2: AWS.ProcessCredentials({profile}) (AWS_SDK_LOAD_CONFIG=1, so ~/.aws/config is
    read), ONE AWS.STS client with `sts_url` set in code, `calls` GetCallerIdentity calls."""
    ok, reason = js_sdk_v2_available()
    if not ok:
        raise AssertionError(f"the JS SDK v2 consumer cannot run: {reason}")
    env = _full_env(env)
    env["AWS_SDK_LOAD_CONFIG"] = "1"
    what = "node caller-identity-v2.cjs"
    argv = [_node_exe(), NODE_V2_SCRIPT, profile, sts_url, _calls_arg(calls)]
    result = _check(_run(argv, env, timeout, cwd=NODE_DIR), what)
    return _arns_from_json_lines(result, what, int(calls))
