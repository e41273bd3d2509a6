#!/usr/bin/env bash
# The real keyrings the keyring tests run against (tests/integration/test_keyring_*.py):
#   gnome-keyring    a Secret Service daemon, started unlocked on a private session bus per test
#   dbus             dbus-run-session / dbus-daemon for that private bus
#   libsecret-tools  secret-tool, to check from outside what credproc stored
#   keyutils         keyctl, to check the kernel keyring from outside
# Idempotent: does nothing when every command is already there. Needs root and apt-get.
set -euo pipefail
need=()
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v dbus-daemon >/dev/null && command -v dbus-run-session >/dev/null || need+=(dbus dbus-daemon)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
command -v keyctl >/dev/null || need+=(keyutils)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-keyring.sh: need root and apt-get to install: ${need[*]} (the keyring tests skip, and fail on CI)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# dbus-daemon is its own package on newer Debian; on bookworm it is part of dbus
pkgs=()
for p in "${need[@]}"; do
  if apt-cache show "$p" >/dev/null 2>&1; then pkgs+=("$p"); fi
done
install() { apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${pkgs[@]}"; }
if ! install; then
  echo "install-keyring.sh: apt-get install failed; refreshing the package lists and retrying" >&2
  apt-get -o DPkg::Lock::Timeout=900 update -q
  for p in "${need[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1 && [[ ! " ${pkgs[*]} " =~ " $p " ]]; then pkgs+=("$p"); fi
  done
  install || { echo "install-keyring.sh: could not install ${pkgs[*]} (see the apt output above)" >&2; exit 1; }
fi
