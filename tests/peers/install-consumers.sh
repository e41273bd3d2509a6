#!/usr/bin/env bash
# Installs the real credential_process consumers that come from Debian, for
# tests/integration/test_consumers.py:
#   awscli                               the AWS CLI v2 (/usr/bin/aws; the `aws` in the venv is v1)
#   golang-go                            to build tests/go/* offline in GOPATH mode
#   golang-github-aws-aws-sdk-go-v2-dev  the AWS SDK for Go v2 (what Terraform's provider uses)
#   golang-github-aws-aws-sdk-go-dev     the AWS SDK for Go v1
#   ruby-aws-sdk-core                    the AWS SDK for Ruby v3 (bundles STS)
# Idempotent: does nothing when all are installed; runs `apt-get update` only when one is missing
# (the lists on a fresh machine may be stale or absent).
# Only as root with apt-get (CI); elsewhere it says what is missing and exits 0, and the tests for
# those consumers skip (and fail on CI, where CI=true).
set -uo pipefail

packages=(awscli golang-go golang-github-aws-aws-sdk-go-v2-dev golang-github-aws-aws-sdk-go-dev ruby-aws-sdk-core)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-consumers.sh: not root with apt-get: cannot install ${missing[*]};" \
       "their consumer tests will skip (and fail on CI)" >&2
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get -o DPkg::Lock::Timeout=900 update -q >"$log" 2>&1 \
   || ! apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  echo "install-consumers.sh: could not install ${missing[*]}; apt said:" >&2
  cat "$log" >&2
  exit 1
fi
echo "install-consumers.sh: installed ${missing[*]}"
