"""doctor against the CAS emulator: a url that is not the CAS prefix (no awsSts endpoint under it)
fails the check, although the server is reachable."""

from tests.integration.test_cas import PASSWORD, ROLE_A
from tests.peers.cas_emulator import CasEmulator


def cas_config(url):
    return f'[idp.campus]\ntype = "cas"\nurl = "{url}"\nusername = "alice"\nmfa = "none"\n\n' \
           f'[role.campus]\nidp = "campus"\narn = "{ROLE_A}"\n'


def test_doctor_fails_a_cas_url_without_an_awssts_endpoint(sandbox, moto_server):
    users = {"alice": {"password": PASSWORD, "attributes": {"awsroles": [ROLE_A]}, "mfa": None}}
    with CasEmulator(moto_server.url, users, rbac_enabled=True, principal_attribute_name="awsroles") as cas:
        sandbox.write_config(cas_config(cas.url))
        out = sandbox.run("doctor").stdout.decode()
        assert f"✓ idp campus: the CAS awsSts endpoint {cas.url}/actuator/awsSts exists" in out, out
        sandbox.write_config(cas_config(cas.base_url))  # the /cas prefix left out
        r = sandbox.run("doctor")
        out = r.stdout.decode()
        assert r.returncode == 12
        assert f"✗ idp campus: the CAS awsSts endpoint {cas.base_url}/actuator/awsSts: answers HTTP 404" in out, out
        assert f"✓ idp campus: the CAS server {cas.base_url} is reachable" in out
        assert cas.post_count == 0  # nothing was sent
