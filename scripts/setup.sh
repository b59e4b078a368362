#!/usr/bin/env bash
# Installs the Debian 12 packages Hearth needs to build, test and boot its bundled guest.
# Idempotent: when everything is there it only checks (well under a second).
#   scripts/setup.sh [--bench]    --bench also installs QEMU, the benchmarks' peer.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages=(
  build-essential cmake pkg-config clang
  libseccomp-dev nlohmann-json3-dev libcpp-httplib-dev liburing-dev
  googletest libgtest-dev libbenchmark-dev
  util-linux iproute2 curl python3 python3-yaml
)
# The guest kernel and root file system build needs these (one per line).
mapfile -t guest_packages < <(grep -v '^\s*#' "${repo}/resources/packages.txt" | sed '/^\s*$/d')
packages+=("${guest_packages[@]}")
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(qemu-system-x86 fio)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("${p}")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [[ "$(id -u)" != 0 ]]; then
  sudo_cmd=(sudo)
fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
