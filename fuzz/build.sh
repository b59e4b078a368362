#!/usr/bin/env bash
# Configures and builds the libFuzzer targets with clang (HEARTH_FUZZ=ON) in build-fuzz/.
# Prints the build directory on its last line. See fuzz/README.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${repo}/build-fuzz"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
generator=()
if command -v ninja >/dev/null && [[ ! -f "${build_dir}/CMakeCache.txt" ]]; then
  generator=(-G Ninja)
fi
CC=clang CXX=clang++ cmake -S "${repo}" -B "${build_dir}" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_FUZZ=ON -DHEARTH_BUILD_TESTS=OFF -DHEARTH_BUILD_BENCHMARKS=OFF \
  >/dev/null
cmake --build "${build_dir}" -j"$(nproc)" --target hearth_fuzz_all >&2
echo "${build_dir}"
