"""IAM Identity Center -> GetRoleCredentials for one account and permission set (role_name).

Without account_id and/or role_name: a menu built from ListAccounts / ListAccountRoles at a
terminal, remembered like the CAS menu; without a terminal, a configuration error (exit 3) that
lists every account (with its name) and every role, with the lines that pin one.
"""

from ...core.errors import ConfigError
from .. import rolechoice


class SsoRoleProvider:
    def __init__(self, ctx, session, role):
        self.ctx = ctx
        self.session = session
        self.role = role

    def describe(self):
        target = f"{self.role.get('account_id') or '?'}/{self.role.get('role_name') or '?'}"
        return f"GetRoleCredentials({target}, {self.session.describe()})"

    def retrieve(self):
        return self.session.with_token(self._retrieve)

    def _retrieve(self, token):
        account, role_name = self._target(token)
        return self.session.client.role_credentials(token, account, role_name)

    def _target(self, token):
        account, role_name = self.role.get("account_id"), self.role.get("role_name")
        if account and role_name:
            return account, role_name
        idp = self.session.idp
        remembered = rolechoice.remembered(self.ctx, self.role["name"], idp["name"])
        if remembered and "/" in remembered:
            a, r = remembered.split("/", 1)
            if (not account or a == account) and (not role_name or r == role_name):
                return a, r
        client = self.session.client
        names = dict(client.accounts(token))
        pairs = []
        for a in ([account] if account else sorted(names)):
            for r in client.roles(token, a):
                if not role_name or r == role_name:
                    pairs.append((a, r))
        who = f"IAM Identity Center ({idp['start_url']}) gives you"
        if not pairs:
            raise ConfigError(f"{who} no role matching [role.{self.role['name']}] "
                              f"(account_id {account or 'any'}, role_name {role_name or 'any'})",
                              hint=f"list what you can reach with: credproc sso roles --idp {idp['name']}")
        if len(pairs) == 1:
            return pairs[0]
        labels = [f"{a} ({names.get(a) or 'no name'}) {r}" for a, r in pairs]
        values = [f"{a}/{r}" for a, r in pairs]
        if not self.ctx.terminal.available():
            listing = "; ".join(labels)
            a, r = pairs[0]
            raise ConfigError(f"{who} several roles and [role.{self.role['name']}] names none: {listing}",
                              hint=f"pin one in [role.{self.role['name']}], e.g. account_id = \"{a}\" and role_name = \"{r}\"")
        chosen = rolechoice.choose(self.ctx, self.role["name"], idp["name"], values, who, labels=labels,
                                   pin=lambda v: 'account_id = "{}" and role_name = "{}"'.format(*v.split("/", 1)))
        a, r = chosen.split("/", 1)
        return a, r
