"""Long-lived IAM user keys from the shared credentials/config files (what `aws configure` wrote)."""


from ...core import awsfiles
from ...core.credentials import Credentials, mask
from ...core.errors import ConfigError

# A source profile must hold keys itself. Any of these would make botocore resolve credentials
# some other way, possibly by running credproc again.
_INDIRECT = ("credential_process", "role_arn", "source_profile", "credential_source", "web_identity_token_file",
             "sso_start_url", "sso_session", "sso_account_id", "sso_role_name", "login_session")


class StaticKeysProvider:
    def __init__(self, profile, idp_name):
        self.profile = profile
        self.idp_name = idp_name

    def describe(self):
        return f"profile {self.profile}"

    def retrieve(self):
        creds_path, config_path = awsfiles.shared_files()
        where = f"[idp.{self.idp_name}] profile = {self.profile!r}"
        config_section = "default" if self.profile == "default" else f"profile {self.profile}"
        candidates = [(creds_path, awsfiles.sections(creds_path).get(self.profile)),
                      (config_path, awsfiles.sections(config_path).get(config_section))]
        for path, section in candidates:
            if not section:
                continue
            indirect = [k for k in _INDIRECT if k in section]
            if indirect:
                raise ConfigError(f"{where}: that profile in {path} uses {indirect[0]}, not static keys",
                                  hint="point profile at one holding aws_access_key_id/aws_secret_access_key; "
                                       "credproc itself does the role assumption and MFA")
            if section.get("aws_access_key_id") and section.get("aws_secret_access_key"):
                return Credentials(section["aws_access_key_id"].strip(), section["aws_secret_access_key"].strip(),
                                   (section.get("aws_session_token") or "").strip() or None)
        import difflib

        known = sorted(set(awsfiles.sections(creds_path)) | {
            awsfiles.profile_of_section(h) for h in awsfiles.sections(config_path)} - {None, self.profile})
        close = difflib.get_close_matches(self.profile, known, n=1, cutoff=0.6)
        raise ConfigError(f"{where}: no access keys for that profile in {creds_path} or {config_path}",
                          hint=f"did you mean {close[0]}?" if close else f"run: aws configure --profile {self.profile}")


def label(profile, creds):
    return f"profile {profile} ({mask(creds.access_key_id)})"
