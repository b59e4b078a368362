#!/usr/bin/env bash
# Configures and builds Hearth (warnings are errors), through ccache and with Ninja when they are
# installed. Prints the build directory on its last line.
#   scripts/build.sh [--sanitize | --tsan] [--unit]
#     --sanitize  AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#                 (HEARTH_SANITIZE=ON)
#     --tsan      ThreadSanitizer build in build-tsan/ (HEARTH_TSAN=ON)
#     --unit      build only the unit-test executables (target hearth_unit_test_binaries)
# README.md "Sanitizers" says what the sanitizer builds run and how.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${repo}/build"
options=(-DHEARTH_SANITIZE=OFF -DHEARTH_TSAN=OFF)
target=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) build_dir="${repo}/build-asan"; options=(-DHEARTH_SANITIZE=ON -DHEARTH_TSAN=OFF) ;;
    --tsan) build_dir="${repo}/build-tsan"; options=(-DHEARTH_SANITIZE=OFF -DHEARTH_TSAN=ON) ;;
    --unit) target=(--target hearth_unit_test_binaries) ;;
    -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}" | cut -c3-; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
launcher=()
if command -v ccache >/dev/null; then
  # Worktrees of the same repository share cache entries.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "${repo}")}"
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
generator=()
if command -v ninja >/dev/null && [[ ! -f "${build_dir}/CMakeCache.txt" ]]; then
  generator=(-G Ninja)
fi
# Sanitizer builds are for the tests: no benchmarks (numbers from them would mean nothing).
if [[ "${build_dir}" != "${repo}/build" ]]; then
  options+=(-DHEARTH_BUILD_BENCHMARKS=OFF)
fi
cmake -S "${repo}" -B "${build_dir}" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${options[@]}" >/dev/null
cmake --build "${build_dir}" -j"$(nproc)" "${target[@]}" >&2
echo "${build_dir}"
