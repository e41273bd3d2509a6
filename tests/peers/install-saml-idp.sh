#!/usr/bin/env bash
# Installs the real SAML 2.0 IdP the SAML tests run on loopback: SimpleSAMLphp from Debian, PHP's
# CLI (its built-in web server), php-xml (DOM: without it every page is an "Unhandled exception"),
# php-mbstring, openssl for the signing key, and xmlsec1 (tests check that the Response credproc
# sends still verifies). Idempotent: does nothing when all are present.
# See ../shared/reference/saml-peers.md. Needs root and apt-get; prints why when it cannot.
set -uo pipefail
packages=(simplesamlphp php-cli php-xml php-mbstring openssl xmlsec1)
need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-saml-idp.sh: missing ${need[*]} and cannot install them here (needs root and apt-get):" \
       "the SAML tests will skip (and fail on CI)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists do not know the IdP yet (a fresh container)
if ! apt-cache show simplesamlphp >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=900 update -q || { echo "install-saml-idp.sh: apt-get update failed" >&2; exit 1; }
fi
if ! apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${need[@]}"; then
  echo "install-saml-idp.sh: apt-get install ${need[*]} failed (output above)" >&2
  exit 1
fi
# simplesamlphp depends on apache2; it is not used. Where no policy-rc.d kept it from starting,
# stop it so the install leaves no web server listening.
if command -v systemctl >/dev/null && systemctl is-active --quiet apache2 2>/dev/null; then
  systemctl stop apache2 || true
elif [ -x /usr/sbin/apache2ctl ] && pgrep -x apache2 >/dev/null 2>&1; then
  /usr/sbin/apache2ctl stop || true
fi
exit 0
