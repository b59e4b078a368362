#!/usr/bin/env bash
# Runs Hearth's end-to-end boot benchmark against QEMU microvm and prints a summary.
#
#   benchmarks/run-boot-bench.sh [--floor-runs N] [--linux-runs N] [--memory-runs N]
#                                [--vcpus N] [--modes "floor linux memory"] [--no-build]
#                                [--build-dir DIR] [--log FILE] [-- extra hearth_boot_bench args]
#
# Builds the project if needed (cmake), makes sure the bundled Linux guest and its QEMU variant
# exist (resources/build-guest.sh, default and --variant qemu-int3skip), runs the modes of
# build/benchmarks/hearth_boot_bench and prints their "summary:", "target:" and "failures:"
# lines at the end. The full output goes to the log file (default build/boot-bench.log).
# See benchmarks/README.md for what every number measures.

set -euo pipefail

readonly BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO_DIR="$(dirname "${BENCH_DIR}")"

floor_runs=20
linux_runs=5
memory_runs=5
vcpus=1
modes="floor linux memory"
build=1
build_dir="${REPO_DIR}/build"
log=""
extra=()

die() { printf 'run-boot-bench: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'run-boot-bench: %s\n' "$*" >&2; }

while (($#)); do
  case "$1" in
    --floor-runs) floor_runs="$2"; shift 2 ;;
    --linux-runs) linux_runs="$2"; shift 2 ;;
    --memory-runs) memory_runs="$2"; shift 2 ;;
    --vcpus) vcpus="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --log) log="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
log="${log:-${build_dir}/boot-bench.log}"

# ------------------------------------------------------------------------------------ build --
bench="${build_dir}/benchmarks/hearth_boot_bench"
if ((build)); then
  if [[ ! -f "${build_dir}/CMakeCache.txt" ]]; then
    cmake -S "${REPO_DIR}" -B "${build_dir}" >&2
  fi
  # Incremental: cheap when everything is up to date. The tiny guests come from tests/guests.
  cmake --build "${build_dir}" -j"$(nproc)" --target hearth hearth_boot_bench >&2
  cmake --build "${build_dir}" -j"$(nproc)" >&2 || note "full build failed; continuing with the benchmark targets"
fi
[[ -x "${bench}" ]] || die "${bench} not built (run without --no-build)"
for g in hello echo; do
  [[ -f "${build_dir}/tests/guests/${g}.elf" ]] ||
    die "${build_dir}/tests/guests/${g}.elf missing (needs HEARTH_BUILD_TESTS=ON)"
done

# ------------------------------------------------------------------------------------ guest --
if [[ " ${modes} " == *" linux "* ]]; then
  guest_dir="${build_dir}/guest"
  build_guest="${REPO_DIR}/resources/build-guest.sh"
  need_default=0 need_qemu=0
  for f in vmlinux initramfs.cpio; do [[ -f "${guest_dir}/${f}" ]] || need_default=1; done
  [[ -f "${guest_dir}/qemu/vmlinux" ]] || need_qemu=1
  if ((need_default || need_qemu)); then
    [[ -x "${build_guest}" ]] ||
      die "the Linux guest is missing and ${build_guest} does not exist yet; build the guest" \
          "(vmlinux, initramfs.cpio, qemu/vmlinux in ${guest_dir}) or run with --modes 'floor memory'"
    if ((need_default)); then
      note "building the Linux guest (resources/build-guest.sh; a cold build takes minutes)"
      "${build_guest}" --out "${guest_dir}" >&2
    fi
    if ((need_qemu)); then
      note "building the QEMU variant (resources/build-guest.sh --variant qemu-int3skip)"
      "${build_guest}" --variant qemu-int3skip --out "${guest_dir}/qemu" >&2
    fi
  fi
fi

# -------------------------------------------------------------------------------------- run --
mkdir -p "$(dirname "${log}")"
: > "${log}"
status=0
for mode in ${modes}; do
  case "${mode}" in
    floor) runs="${floor_runs}" ;;
    linux) runs="${linux_runs}" ;;
    memory) runs="${memory_runs}" ;;
    *) die "unknown mode '${mode}' (floor, linux, memory)" ;;
  esac
  note "mode ${mode}: ${runs} runs per VMM"
  "${bench}" "${mode}" --runs "${runs}" --vcpus "${vcpus}" --build-dir "${build_dir}" \
    --verbose "${extra[@]}" 2>&1 | tee -a "${log}" || status=1
done

echo
echo "================================ summary ($(date -u +%Y-%m-%dT%H:%MZ)) ================================"
grep -m1 '^host:' "${log}" || true
grep -E '^(== |summary:|target:|failures:|kernels:|  FAILED)' "${log}" || true
echo "full output: ${log}"
exit "${status}"
