#!/usr/bin/env bash
# Configures and builds Hearth (warnings are errors).
#   scripts/build.sh [--sanitize]   --sanitize: ASan + UBSan build in build-asan/
# Prints the build directory on its last line.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${repo}/build"
sanitize=OFF
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir="${repo}/build-asan"
  sanitize=ON
fi
cmake -S "${repo}" -B "${build_dir}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHEARTH_SANITIZE="${sanitize}" >/dev/null
cmake --build "${build_dir}" -j"$(nproc)" >&2
echo "${build_dir}"
