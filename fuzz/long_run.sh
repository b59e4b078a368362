#!/usr/bin/env bash
# The long fuzz campaign (issue 8: each target for 10 M executions or an hour): runs every
# target in turn, up to RUNS executions or SECONDS seconds each, at low priority, keeping its
# corpus in WORKDIR/corpus/<target> (so a later campaign continues it) and findings in
# WORKDIR/art/<target>/. Appends one line per target to WORKDIR/summary.txt.
#   fuzz/long_run.sh [-w WORKDIR] [-r RUNS] [-s SECONDS] [target...]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workdir="${HOME}/.cache/hearth/fuzz-long"
runs=10000000
seconds=3600
while getopts "w:r:s:h" opt; do
  case "${opt}" in
    w) workdir="${OPTARG}" ;;
    r) runs="${OPTARG}" ;;
    s) seconds="${OPTARG}" ;;
    *) sed -n '2,6p' "$0" | cut -c3-; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ "${runs}" =~ ^[1-9][0-9]*$ && "${seconds}" =~ ^[1-9][0-9]*$ ]] || {
  echo "long_run.sh: -r and -s want positive numbers" >&2; exit 2; }
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(api_request cmdline vsock_connect_line vm_config kernel_loader queue mmio net block
           snapshot_state vsock)
fi
build_dir="$("${repo}/fuzz/build.sh" | tail -n 1)"
mkdir -p "${workdir}"
cd "${workdir}"
for t in "${targets[@]}"; do
  [[ -x "${build_dir}/fuzz/fuzz_${t}" ]] || { echo "long_run.sh: no target fuzz_${t}" >&2; exit 2; }
  mkdir -p "corpus/${t}" "art/${t}"
  start=$(date +%s)
  rc=0
  nice -n 15 "${build_dir}/fuzz/fuzz_${t}" -runs="${runs}" -max_total_time="${seconds}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="art/${t}/" \
    "corpus/${t}" "${repo}/fuzz/corpus/${t}" > "log.${t}" 2>&1 || rc=$?
  echo "${t} rc=${rc} seconds=$(( $(date +%s) - start )) $(grep -a 'stat::number_of_executed_units' "log.${t}" || true)" \
    | tee -a summary.txt
done
