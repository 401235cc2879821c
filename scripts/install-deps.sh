#!/usr/bin/env bash
# Installs the Debian 12 packages lsim needs, only those missing.
#   scripts/install-deps.sh [more packages]   (e.g. valgrind, for tests/run_valgrind.sh)
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config liblmdb-dev libzstd-dev libopenblas-dev
      libfaiss-dev libcriterion-dev lmdb-utils zstd "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq "${missing[@]}"
