#!/usr/bin/env bash
# Sets up what is missing, builds Hearth and the bundled guest, and runs every test.
#   scripts/test.sh [--sanitize] [ctest arguments...]
#     --sanitize   build and test with AddressSanitizer + UndefinedBehaviorSanitizer
# Tests that need /dev/kvm run here too (CI has it); they fail, not skip, without it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_args=()
if [[ "${1:-}" == "--sanitize" ]]; then
  build_args+=(--sanitize)
  shift
fi
"${repo}/scripts/setup.sh"
build_dir="$("${repo}/scripts/build.sh" "${build_args[@]}" | tail -n 1)"
"${repo}/resources/build-guest.sh"
cd "${build_dir}"
exec ctest --output-on-failure -j"$(nproc)" "$@"
