#!/usr/bin/env bash
# Scale benchmarks (creation rate, density, boot-time breakdown) with their markdown report.
#
#   benchmarks/scale/run-scale-bench.sh [--no-build] [--build-dir DIR] [-- SCALE_BENCH_ARGS...]
#
# Builds `hearth` and the tiny `hello` guest in BUILD_DIR (default build/, configured like
# scripts/build.sh) unless --no-build, builds the bundled Linux guest with
# resources/build-guest.sh when BUILD_DIR/guest/vmlinux or initramfs.cpio is missing, then runs
# benchmarks/scale/scale_bench.py (arguments after `--` go to it; see its --help). The report
# goes to benchmarks/results/scale-<date>.md (+ -boot.svg); the log also to BUILD_DIR/scale-bench.log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${repo}/build"
export SCALE_BENCH_COMMAND="benchmarks/scale/run-scale-bench.sh $*"
do_build=1
while (($#)); do
  case "$1" in
    --no-build) do_build=0; shift ;;
    --build-dir) [[ $# -ge 2 ]] || { echo "run-scale-bench: --build-dir needs a directory" >&2; exit 2; }
                 build="$(realpath -m "$2")"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run-scale-bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

child=""
cleanup() {
  # scale_bench.py kills its VMMs and removes its work directory itself on SIGTERM.
  if [[ -n "${child}" ]] && kill -0 "${child}" 2>/dev/null; then
    kill -TERM "${child}" 2>/dev/null || true
    wait "${child}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if ((do_build)); then
  cmake -S "${repo}" -B "${build}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "${build}" -j2 --target hearth hearth_guest_hello >&2
fi
if [[ ! -f "${build}/guest/vmlinux" || ! -f "${build}/guest/initramfs.cpio" ]]; then
  "${repo}/resources/build-guest.sh" --out "${build}/guest" >&2
fi
python3 "${repo}/benchmarks/scale/scale_bench.py" --build-dir "${build}" "$@" \
  > >(tee "${build}/scale-bench.log") 2>&1 &
child=$!
status=0
wait "${child}" || status=$?
child=""
exit "${status}"
