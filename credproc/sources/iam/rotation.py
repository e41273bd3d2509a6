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

The rule behind every step: a key is deleted at IAM only after a working key is verified stored
(read back from the store, equal to the one verified with STS). When the store stops answering
(a Secret Service that restarted mid-rotation), nothing is deleted: both keys stay valid at IAM, so
whichever of them the store holds keeps working, and the message names both.
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

    def __init__(self, iam, identity, store, say, sleep=time.sleep, clock=time.monotonic, load=None):
        """load() -> the Credentials the store holds now (None: none); raises when it cannot be read."""
        self.iam = iam
        self.identity = identity
        self.store = store
        self.load = load
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
            outcome, hint = self._undo(user, current, new, stored)
            if isinstance(e, CredprocError):
                e.message = f"{e.message} ({outcome})"
                if hint:
                    e.hint = hint
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

    def _holds(self, creds):
        """True when the store verifiably holds exactly these keys (read back), False when it
        verifiably does not, None when it cannot be read."""
        if self.load is None:
            return None
        try:
            got = self.load()
        except Exception as e:  # noqa: BLE001 - an unreadable store is an answer here
            log.debug("reading the store back failed: %s", type(e).__name__)
            return None
        return got is not None and (got.access_key_id, got.secret_access_key) == \
            (creds.access_key_id, creds.secret_access_key)

    def _undo(self, user, current, new, stored):
        """Put things back as far as it is safe: (what happened, a hint or None). The new key is
        deleted at IAM only when the old one is verified stored again."""
        old_id, new_id = mask(current.access_key_id), mask(new.access_key_id)
        if stored:
            try:
                self.store(current)  # stores and reads back
                restored = True
            except Exception as e:  # noqa: BLE001 - reported below; nothing is deleted then
                log.debug("putting the old key back failed: %s", type(e).__name__)
                restored = self._holds(current)
            if not restored:
                holds_new = self._holds(new)
                if holds_new:
                    where = f"the store holds the new key {new_id} (it works)"
                elif holds_new is None:
                    where = (f"the store could not be read back, so it holds the old key {old_id} or the new key "
                             f"{new_id}")
                else:
                    where = f"the store holds neither key {old_id} nor {new_id}"
                self.say(f"could not put the old key {old_id} back; {where}. Both keys are kept valid at IAM, "
                         f"so a key the store holds still works")
                return (f"rotation NOT undone: both the old key {old_id} and the new key {new_id} are still valid at "
                        f"IAM for user {user}; {where}",
                        f"once the store answers, check it (credproc doctor), then delete the key it does not hold: "
                        f"aws iam delete-access-key --user-name {user} --access-key-id KEY_ID "
                        f"(old: {current.access_key_id}, new: {new.access_key_id})")
        try:
            self.iam.delete_access_key(user, new.access_key_id)
            self.say(f"deleted the new key {new_id} again")
        except Exception as e:  # noqa: BLE001
            self.say(f"could not delete the new key {new_id} ({getattr(e, 'message', type(e).__name__)}); "
                     f"delete it: aws iam delete-access-key --user-name {user} --access-key-id {new.access_key_id}")
        return f"rotation undone: the old key {old_id} is kept", None


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
