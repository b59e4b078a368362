#!/usr/bin/env bash
# Boot once, snapshot, restore K clones: the building block of a function platform.
#
#   scripts/clone-demo.sh [-k CLONES] [-m MEM_MIB] [-g KERNEL] [-w MARKER] [-b BUILD_DIR]
#
# 1. Starts `hearth --api-sock`, boots KERNEL (default: the counter test guest) through the API
#    and waits for MARKER (default "count 5") on its console.
# 2. PATCH /vm Paused, PUT /snapshot/create (Full).
# 3. Starts K fresh hearth processes and PUT /snapshot/load (File backend, resume_vm) into
#    each, one after the other; every clone keeps running.
# 4. Reports the restore latency per clone (the PUT /snapshot/load round trip as curl sees it:
#    request sent -> 204 received, which includes mapping the memory file, rebuilding devices,
#    restoring KVM state and starting the vCPUs), its median and p90, checks each clone's
#    console goes on counting, and sums the clones' PSS (/proc/PID/smaps_rollup) next to
#    K x the guest size.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${repo}/build"
clones=8
mem_mib=128
kernel=""
marker="count 5"
while getopts "k:m:g:w:b:h" opt; do
  case "${opt}" in
    k) clones="${OPTARG}" ;;
    m) mem_mib="${OPTARG}" ;;
    g) kernel="${OPTARG}" ;;
    w) marker="${OPTARG}" ;;
    b) build="${OPTARG}" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
[[ "${clones}" =~ ^[1-9][0-9]*$ ]] || { echo "clone-demo: -k wants a positive count" >&2; exit 2; }
[[ "${mem_mib}" =~ ^[1-9][0-9]*$ ]] || { echo "clone-demo: -m wants MiB" >&2; exit 2; }
hearth="${build}/src/hearth"
kernel="${kernel:-${build}/tests/guests/counter.elf}"
[[ -x "${hearth}" ]] || { echo "clone-demo: ${hearth} missing: build first (scripts/build.sh)" >&2; exit 1; }
[[ -r "${kernel}" ]] || { echo "clone-demo: kernel ${kernel} not readable" >&2; exit 1; }

work="$(mktemp -d /tmp/hearth-clones-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "${pid}" 2>/dev/null || true; done
  rm -rf "${work}"
}
trap cleanup EXIT

# api SOCKET METHOD PATH [BODY]: prints "STATUS SECONDS", the body goes to ${work}/last.body.
api() {
  curl -sS --unix-socket "$1" -X "$2" -o "${work}/last.body" -w '%{http_code} %{time_total}' \
    -H 'Content-Type: application/json' ${4:+--data "$4"} "http://localhost$3"
}
expect_204() {
  local out
  out="$(api "$@")"
  if [[ "${out%% *}" != 204 ]]; then
    echo "clone-demo: $2 $3 -> ${out%% *}: $(cat "${work}/last.body")" >&2
    exit 1
  fi
  echo "${out#* }"
}
# start_vmm NAME: starts hearth on ${work}/NAME.sock, console in ${work}/NAME.out; sets vmm_pid.
start_vmm() {
  "${hearth}" --api-sock "${work}/$1.sock" >"${work}/$1.out" 2>"${work}/$1.err" &
  vmm_pid=$!
  pids+=("${vmm_pid}")
  for _ in $(seq 200); do
    [[ -S "${work}/$1.sock" ]] && curl -s --unix-socket "${work}/$1.sock" http://localhost/ >/dev/null && return 0
    sleep 0.01
  done
  echo "clone-demo: $1 did not open its API socket: $(cat "${work}/$1.err")" >&2
  exit 1
}
wait_for() {  # FILE TEXT SECONDS
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1"; do
    (( SECONDS < deadline )) || { echo "clone-demo: no '$2' in $1 after $3 s" >&2; exit 1; }
    sleep 0.02
  done
}

start_vmm base
base_pid="${vmm_pid}"
expect_204 "${work}/base.sock" PUT /boot-source \
  "{\"kernel_image_path\":\"${kernel}\",\"boot_args\":\"console=ttyS0\"}" >/dev/null
expect_204 "${work}/base.sock" PUT /machine-config "{\"vcpu_count\":1,\"mem_size_mib\":${mem_mib}}" >/dev/null
expect_204 "${work}/base.sock" PUT /actions '{"action_type":"InstanceStart"}' >/dev/null
wait_for "${work}/base.out" "${marker}" 120
expect_204 "${work}/base.sock" PATCH /vm '{"state":"Paused"}' >/dev/null
create_s="$(expect_204 "${work}/base.sock" PUT /snapshot/create \
  "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"${work}/vm.snap\",\"mem_file_path\":\"${work}/vm.mem\"}")"
kill "${base_pid}"
wait "${base_pid}" 2>/dev/null || true
echo "snapshot: ${mem_mib} MiB guest, create ${create_s} s, state $(stat -c %s "${work}/vm.snap") bytes," \
     "memory file $(du -k "${work}/vm.mem" | cut -f1) KiB on disk"

latencies=()
clone_pids=()
for i in $(seq "${clones}"); do
  start_vmm "clone${i}"
  clone_pids+=("${vmm_pid}")
  t="$(expect_204 "${work}/clone${i}.sock" PUT /snapshot/load \
    "{\"snapshot_path\":\"${work}/vm.snap\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"${work}/vm.mem\"},\"resume_vm\":true}")"
  latencies+=("${t}")
done
# Every clone runs: its console goes on past the marker, with no second boot.
for i in $(seq "${clones}"); do
  for _ in $(seq 500); do
    [[ "$(grep -c '^count ' "${work}/clone${i}.out" || true)" -ge 3 ]] && break
    sleep 0.02
  done
  [[ "$(grep -c '^count ' "${work}/clone${i}.out" || true)" -ge 3 ]] || { echo "clone-demo: clone ${i} does not run" >&2; exit 1; }
  if grep -q 'counter start' "${work}/clone${i}.out"; then echo "clone-demo: clone ${i} rebooted" >&2; exit 1; fi
done
pss_kib=0
for pid in "${clone_pids[@]}"; do
  p="$(awk '/^Pss:/ {print $2}' "/proc/${pid}/smaps_rollup")"
  pss_kib=$((pss_kib + p))
done
python3 - "${clones}" "${mem_mib}" "${pss_kib}" "${latencies[@]}" <<'PY'
import statistics, sys
k, mem, pss = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lat = sorted(float(x) * 1000 for x in sys.argv[4:])
p90 = lat[min(len(lat) - 1, int(round(0.9 * (len(lat) - 1))))]
print("restore (PUT /snapshot/load round trip), %d clones: median %.2f ms, p90 %.2f ms, min %.2f, max %.2f"
      % (k, statistics.median(lat), p90, lat[0], lat[-1]))
print("per clone (ms): " + " ".join("%.2f" % x for x in lat))
print("clones' total PSS: %.1f MiB (%.1f MiB per clone) vs %d x %d MiB = %d MiB of guest memory"
      % (pss / 1024, pss / 1024 / k, k, mem, k * mem))
PY
