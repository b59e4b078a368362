#!/usr/bin/env bash
# Sets up what is missing, builds Hearth and the bundled guest, and runs every test.
#   scripts/test.sh [--sanitize] [--no-fuzz] [ctest arguments...]
#     --sanitize   build and test with AddressSanitizer + UndefinedBehaviorSanitizer
#     --no-fuzz    skip the short fuzz runs (clang build in build-fuzz/, ctest label fuzz)
# Tests that need /dev/kvm run here too (CI has it); they fail, not skip, without it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_args=()
fuzz=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) build_args+=(--sanitize) ;;
    --no-fuzz) fuzz=0 ;;
    *) break ;;
  esac
  shift
done
"${repo}/scripts/setup.sh"
build_dir="$("${repo}/scripts/build.sh" "${build_args[@]}" | tail -n 1)"
"${repo}/resources/build-guest.sh"
status=0
(cd "${build_dir}" && ctest --output-on-failure -j"$(nproc)" "$@") || status=$?
if ((fuzz)); then
  # Every fuzz target for a few seconds from its seed corpus (fuzz/README.md).
  fuzz_dir="$("${repo}/fuzz/build.sh" | tail -n 1)"
  (cd "${fuzz_dir}" && ctest --output-on-failure -j"$(nproc)" -L fuzz) || status=$?
fi
exit "${status}"
