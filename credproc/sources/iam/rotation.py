"""Rotating an IAM user's access key without ever leaving the user without a working one.

    1. the current key is checked (GetCallerIdentity) and the user must have a free key slot
    2. CreateAccessKey
    3. the new key is checked (GetCallerIdentity, same user; retried while IAM propagates it)
    4. the new key is stored (and read back) where the current one was
    5. DeleteAccessKey of the old key

A failure at 2 changes nothing. A failure at 3 or 4 puts the old key back in the store (if 4 had
begun) and deletes the new key: the user is left as before. A failure at 5 leaves the new key
stored and working, and the old one still valid: the message says which key to delete. The effects
(IAM, STS, the store, the clock) are passed in, so each failure is tested with fakes; the
integration tests do the same against moto in auth mode.
"""

import time

from ...core import log
from ...core.credentials import Credentials, mask
from ...core.errors import AuthenticationFailed, CredprocError, UsageError

PROPAGATION_WAIT = 30  # seconds a new IAM key may take to be accepted by STS


def user_name(arn):
    """The IAM user name in arn:aws:iam::123456789012:user/path/name, or None (not a user)."""
    parts = (arn or "").split(":", 5)
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("user/"):
        return parts[5].rsplit("/", 1)[-1]
    return None


class Rotation:
    """iam: an object with list_access_keys(user) -> [(key_id, status)], create_access_key(user) ->
    Credentials, delete_access_key(user, key_id). identity(creds) -> the caller ARN (raises
    AuthenticationFailed for keys STS does not accept). store(creds): keep the key where the
    current one is. say(text): a line for the user."""

    def __init__(self, iam, identity, store, say, sleep=time.sleep, clock=time.monotonic):
        self.iam = iam
        self.identity = identity
        self.store = store
        self.say = say
        self.sleep = sleep
        self.clock = clock

    def run(self, current):
        arn = self.identity(current)
        user = user_name(arn)
        if user is None:
            raise UsageError(f"the keys are not an IAM user's ({arn}); only IAM user access keys can be rotated")
        others = [(k, s) for k, s in self.iam.list_access_keys(user) if k != current.access_key_id]
        if others:
            key_id, status = others[0]
            raise UsageError(f"IAM user {user} already has a second access key ({mask(key_id)}, {status.lower()}); IAM "
                             "allows two, and rotation needs the free slot for the new one",
                             hint=f"if nothing uses it, delete it: aws iam delete-access-key --user-name {user} "
                                  f"--access-key-id {key_id}")
        new = self.iam.create_access_key(user)
        self.say(f"created access key {mask(new.access_key_id)} for IAM user {user}")
        stored = False
        try:
            self._wait_accepted(new, arn)
            stored = True
            self.store(new)
        except BaseException as e:
            self._undo(user, current, new, stored)
            if isinstance(e, CredprocError):
                e.message = f"{e.message} (rotation undone: the old key {mask(current.access_key_id)} is kept)"
            raise
        self.say(f"stored the new key {mask(new.access_key_id)}; it works")
        try:
            self.iam.delete_access_key(user, current.access_key_id)
        except CredprocError as e:
            e.message = (f"the new key {mask(new.access_key_id)} is stored and works, but deleting the old key "
                         f"{mask(current.access_key_id)} failed: {e.message}")
            e.hint = (f"delete it yourself: aws iam delete-access-key --user-name {user} "
                      f"--access-key-id {current.access_key_id}")
            raise
        self.say(f"deleted the old key {mask(current.access_key_id)}")
        return new

    def _wait_accepted(self, new, arn):
        deadline = self.clock() + PROPAGATION_WAIT
        while True:
            try:
                got = self.identity(new)
                break
            except AuthenticationFailed:
                if self.clock() >= deadline:
                    raise
                log.debug("the new key is not accepted yet; IAM may still be propagating it")
                self.sleep(2)
        if got != arn:
            raise AuthenticationFailed(f"the new key belongs to {got}, not {arn}")

    def _undo(self, user, current, new, stored):
        if stored:
            try:
                self.store(current)
            except Exception as e:  # noqa: BLE001 - report, and go on deleting the new key
                self.say(f"could not put the old key back ({type(e).__name__}: {getattr(e, 'message', '')}); "
                         f"it is {mask(current.access_key_id)} and still valid")
        try:
            self.iam.delete_access_key(user, new.access_key_id)
            self.say(f"deleted the new key {mask(new.access_key_id)} again")
        except Exception as e:  # noqa: BLE001
            self.say(f"could not delete the new key {mask(new.access_key_id)} ({getattr(e, 'message', type(e).__name__)}); "
                     f"delete it: aws iam delete-access-key --user-name {user} --access-key-id {new.access_key_id}")


class BotoIam:
    """The three IAM operations over botocore, errors translated (never a secret in them)."""

    def __init__(self, client, context):
        self.client = client
        self.context = context

    def _call(self, operation, **params):
        import botocore.exceptions as bx

        from ...core.errors import AccessDenied, NetworkError, ServiceError

        log.debug("IAM %s at %s as %s", operation, self.client.meta.endpoint_url, self.context)
        try:
            return getattr(self.client, operation)(**params)
        except bx.ClientError as e:
            err = e.response.get("Error", {})
            code, message = err.get("Code", "Unknown"), err.get("Message", "")[:200]
            name = "".join(p.title() for p in operation.split("_"))
            if code in ("InvalidClientTokenId", "SignatureDoesNotMatch"):
                raise AuthenticationFailed(f"IAM does not accept the credentials of {self.context} ({code})") from None
            if code in ("AccessDenied", "AccessDeniedException"):
                raise AccessDenied(f"IAM {name} denied for {self.context}: {message}",
                                   hint="the user needs iam:ListAccessKeys, iam:CreateAccessKey and iam:DeleteAccessKey "
                                        "on itself (if the policy requires MFA, set mfa_serial on the idp)") from None
            if code == "LimitExceeded":
                raise UsageError(f"IAM {name}: the user already has two access keys") from None
            raise ServiceError(f"IAM {name} failed for {self.context}: {code}: {message}") from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.SSLError,
                bx.ConnectionClosedError, bx.HTTPClientError) as e:
            raise NetworkError(f"cannot reach IAM at {self.client.meta.endpoint_url}: {type(e).__name__}",
                               hint="check the network, proxy, and iam_endpoint_url") from None
        except bx.BotoCoreError as e:
            raise ServiceError(f"IAM {operation} failed: {type(e).__name__}") from None

    def list_access_keys(self, user):
        out = self._call("list_access_keys", UserName=user)
        return [(k["AccessKeyId"], k.get("Status", "Active")) for k in out.get("AccessKeyMetadata", [])]

    def create_access_key(self, user):
        k = self._call("create_access_key", UserName=user)["AccessKey"]
        return Credentials(k["AccessKeyId"], k["SecretAccessKey"])

    def delete_access_key(self, user, key_id):
        self._call("delete_access_key", UserName=user, AccessKeyId=key_id)


def iam_client(credentials, endpoint_url=None, region="us-east-1"):
    import botocore.config

    from ...core.sts import botocore_session

    cfg = botocore.config.Config(connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 3, "mode": "standard"},
                                 user_agent_appid="credproc")
    return botocore_session().create_client(
        "iam", region_name=region, endpoint_url=endpoint_url, config=cfg,
        aws_access_key_id=credentials.access_key_id, aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token)
