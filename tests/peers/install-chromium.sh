#!/usr/bin/env bash
# Installs Debian's Chromium, the real browser the SAML browser sign-in tests drive (headless,
# through a wrapper script that adds --headless=new --no-sandbox: credproc itself never adds either).
# Idempotent: does nothing when it is present. Needs root and apt-get; prints why when it cannot.
set -uo pipefail
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-chromium.sh: chromium is missing and cannot be installed here (needs root and apt-get):" \
       "the browser sign-in tests will skip (and fail on CI)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=900 update -q || { echo "install-chromium.sh: apt-get update failed" >&2; exit 1; }
fi
log=$(mktemp)
if ! apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends chromium >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-chromium.sh: apt-get install chromium failed (output above)" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
exit 0
