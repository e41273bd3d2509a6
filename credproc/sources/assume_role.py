"""AssumeRole from a source provider's credentials."""

from ..core import sts
from ..core.credentials import mask
from ..core.errors import AccessDenied


class AssumeRoleProvider:
    def __init__(self, source, role, session_name, region, endpoint_url, source_label):
        self.source = source
        self.role = role
        self.session_name = session_name
        self.region = region
        self.endpoint_url = endpoint_url
        self.source_label = source_label  # e.g. "profile corp-user" or "role admin"

    def describe(self):
        return f"AssumeRole({self.role['arn']})"

    def params(self):
        r = self.role
        p = {"RoleArn": r["arn"], "RoleSessionName": self.session_name, "DurationSeconds": r["duration"]}
        if r.get("external_id"):
            p["ExternalId"] = r["external_id"]
        if r.get("source_identity"):
            p["SourceIdentity"] = r["source_identity"]
        if r.get("tags"):
            p["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(r["tags"].items())]
        if r.get("transitive_tag_keys"):
            p["TransitiveTagKeys"] = list(r["transitive_tag_keys"])
        if r.get("policy_arns"):
            p["PolicyArns"] = [{"arn": a} for a in r["policy_arns"]]
        return p

    def retrieve(self):
        source = self.source.retrieve()
        client = sts.client(self.region, self.endpoint_url, source)
        context = f"{self.source_label} ({mask(source.access_key_id)})"
        try:
            response, sent_at = sts.call(client, "AssumeRole", context, **self.params())
        except AccessDenied as e:
            caller = sts.caller_arn(client)
            if caller:
                e.message = f"{caller} (from {context}) is not allowed to assume {self.role['arn']}"
            raise
        return sts.credentials_from_response(response, sent_at)
