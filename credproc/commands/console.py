"""credproc console: the AWS Management Console as a role, through the federation endpoint.

getSigninToken turns a role's temporary credentials into a sign-in token; the login link carrying
it signs in whoever opens it within 15 minutes, so the link is a secret: it goes to the browser or
to stdout (--print), never into a log line or an error message.
"""

import json
import os
import sys
import urllib.parse

from .. import app
from ..core import log
from ..core.errors import ConfigError, NetworkError, ServiceError, UsageError

HELP = "open the AWS console in a browser as a role (or print a sign-in link)"
DESCRIPTION = ("Sign in to the AWS Management Console with the role's credentials (prompting as needed): "
               "opens the console in your browser, or prints the sign-in link with --print. The link is valid "
               "for 15 minutes and signs in anyone who has it: do not paste it anywhere shared. Needs a role "
               "that is assumed (AssumeRole): keys or a GetSessionToken session cannot sign in to the console.")
EXAMPLES = """\
  credproc console --role admin             # opens the console in your browser
  credproc console --role admin --print     # prints the sign-in link instead
  credproc console --role admin --destination https://console.aws.amazon.com/s3/"""

# partition: (federation endpoint, default console page)
PARTITIONS = {
    "aws": ("https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
    "aws-us-gov": ("https://signin.amazonaws-us-gov.com/federation", "https://console.amazonaws-us-gov.com/"),
    "aws-cn": ("https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
}
ISSUER = "credproc"
TIMEOUT = 10
FEDERATION_HINT = ("the console accepts only temporary credentials of an assumed role; a session from "
                   "GetSessionToken or long-lived keys cannot sign in")


def add_arguments(parser):
    parser.add_argument("--role", metavar="NAME", required=True, help="the role to sign in to the console as")
    parser.add_argument("--print", action="store_true", help="print the sign-in link on stdout instead of opening a browser")
    parser.add_argument("--destination", metavar="URL",
                        help="the console page to land on (default: the console home of the role's partition)")


def partition(region):
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    if "-iso" in region:  # us-iso-east-1, us-isob-east-1, eu-isoe-west-1: the isolated partitions
        return "aws-iso"
    return "aws"


def endpoints(region, federation_url=None, destination=None):
    """(federation endpoint, destination) for the partition of `region`, either one overridden."""
    name = partition(region)
    if name not in PARTITIONS and not (federation_url and destination):
        raise ConfigError(f"region {region} is in partition {name}, whose console endpoints credproc does not know",
                          hint="set settings.federation_url and pass --destination")
    default_federation, default_destination = PARTITIONS.get(name, (None, None))
    return federation_url or default_federation, destination or default_destination


def _with_query(base, params):
    return base + ("&" if "?" in base else "?") + urllib.parse.urlencode(params)


def login_url(federation, destination, token):
    return _with_query(federation, {"Action": "login", "Issuer": ISSUER, "Destination": destination, "SigninToken": token})  # not an idp type: the federation Action


def signin_token(creds, federation, role):
    from ..core import http

    session = json.dumps({"sessionId": creds.access_key_id, "sessionKey": creds.secret_access_key,
                          "sessionToken": creds.session_token})
    url = _with_query(federation, {"Action": "getSigninToken", "Session": session})
    log.debug("getSigninToken at %s for role %s", federation, role)
    try:
        resp = http.request("GET", url, timeout=TIMEOUT, what="the console federation endpoint")
    except NetworkError as e:
        # Its message names the URL, and this URL's query is the credentials.
        message = e.message.replace(url, federation)
        if any(s and (s in message or urllib.parse.quote_plus(s) in message)
               for s in (creds.secret_access_key, creds.session_token)):
            message = f"cannot reach the console federation endpoint at {federation}"
        raise NetworkError(message, hint=e.hint) from None
    log.debug("the federation endpoint answered HTTP %s", resp.status)
    if resp.status in (400, 401, 403):
        raise ServiceError(f"the console federation endpoint ({federation}) refused the credentials of role {role!r} "
                           f"(HTTP {resp.status})",
                           hint=f"{FEDERATION_HINT}; check that [role.{role}] has an arn to assume")
    if resp.status != 200:
        raise ServiceError(f"the console federation endpoint ({federation}) answered HTTP {resp.status}",
                           hint="try again later, and check settings.federation_url if it is set")
    try:
        token = resp.json().get("SigninToken")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ServiceError(f"the console federation endpoint ({federation}) answered without a sign-in token",
                           hint="check settings.federation_url if it is set")
    return token


def browser_for(cfg, role):
    """The Launcher of the role's `browser` (else [settings] browser) with its `browser_profile`
    (else [settings] browser_profile), or None for the default browser. ConfigError when the
    configured browser is not installed: checked before any prompt."""
    from ..core.browser import launcher

    name = role.get("browser") or cfg.settings.get("browser")
    if not name:
        return None
    return launcher(name, role.get("browser_profile") or cfg.settings.get("browser_profile"))


def open_browser(url, launch=None):
    """True when a browser was started. The link never reaches a command line (core/browser.py)."""
    from ..core.browser import open_secret_url

    return open_secret_url(url, launch)


def _check_can_federate(cfg, name):
    """Refuse before any prompt a role whose credentials cannot sign in (its source says which:
    e.g. an iam role without arn is a GetSessionToken session)."""
    role = cfg.role(name)
    if role.get("source_role"):
        return  # AssumeRole from another role: always a federatable role session
    from .. import sources as idp_registry

    idp = cfg.idps[role["idp"]]
    refusal = idp_registry.source_for(idp).console_refusal(cfg, role, idp)
    if refusal is not None:
        raise refusal


def run(args):
    if args.destination is not None:
        try:
            parts = urllib.parse.urlsplit(args.destination)
            ok = parts.scheme == "https" and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise UsageError(f"--destination: {args.destination!r} must be an https:// URL")
    cfg = app.load_config(args)
    _check_can_federate(cfg, args.role)
    launch = None if args.print else browser_for(cfg, cfg.role(args.role))
    federation, destination = endpoints(cfg.region_for(cfg.role(args.role)), cfg.settings.get("federation_url"),
                                        args.destination)
    creds = app.role_credentials(args, cfg=cfg)
    if not creds.session_token:
        raise ConfigError(f"role {args.role!r} yields long-lived keys, which cannot sign in to the console",
                          hint=FEDERATION_HINT)
    url = login_url(federation, destination, signin_token(creds, federation, args.role))
    if not args.print:
        if open_browser(url, launch):
            where = "your browser" if launch is None else os.path.basename(launch.argv[0])
            if launch is not None and launch.profile:
                where += f" (profile {launch.profile})"
            sys.stderr.write(f"credproc: opened the AWS console as role {args.role} in {where}\n")
            return 0
        sys.stderr.write("credproc: no browser could be opened; open this sign-in link yourself "
                         "(valid for 15 minutes, and it signs in anyone who has it):\n")
        sys.stderr.flush()
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    return 0
