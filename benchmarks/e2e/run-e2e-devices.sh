#!/usr/bin/env bash
# End-to-end device benchmark: block and network transfer rates as the bundled guest's in-kernel
# agent (hearth_agent) measures them, Hearth against QEMU microvm, same run, same guest.
#
#   benchmarks/e2e/run-e2e-devices.sh [--runs N] [--net-bytes B] [--vmms "hearth qemu"]
#                                     [--timeout S] [--no-build] [--build-dir DIR]
#                                     [--guest-dir DIR] [--qemu PATH] [--qemu-machine M]
#                                     [--cache unsafe|writeback] [--out DIR]
#
# Unless --no-build: builds hearth (cmake) and the guest (resources/build-guest.sh, default and
# --variant qemu-int3skip; cached). Needs root (network namespace + tap). Per run and VMM: two fresh all-zero 8 MiB raw images
# (vda, vdb; the agent writes/reads 1 MiB on vdb; --cache unsafe (default, Firecracker's default:
# the guest's flush is not passed on) or writeback (flush = fdatasync): Hearth's cache_type
# Unsafe/Writeback, QEMU's cache=unsafe/writeback), one virtio-net device on a tap (MTU 65520) in a
# private network namespace, and a host TCP peer (net_peer.py, inside the namespace) that receives
# --net-bytes of the agent's stream and sends as many back. Guest command line (both VMMs):
#   hearth_agent.checks=blk:vdb,mtu:eth0:65520,net:<host>:5201:<bytes>:300 hearth_agent.action=poweroff
# Hearth boots build/guest/vmlinux, QEMU build/guest/qemu/vmlinux (the same kernel with the
# agent's int3 self-test skipped), both with build/guest/initramfs.cpio. Runs alternate
# (run 1: hearth, qemu; run 2: qemu, hearth; ...). Prints a line per boot, then the median per VMM
# and the Hearth/QEMU ratio for each figure (higher is better for all of them), and the load
# average. Logs of every boot stay in --out (default build/e2e-devices/).
#
# Figures (from the agent's lines; see resources/README.md):
#   blk_write  write_mbs  1 MiB write bio + flush, MB/s (10^6 B/s)
#   blk_read   read_mbs   1 MiB read bio, MB/s
#   net_tx     tx_mbps    guest->host --net-bytes, Mbit/s
#   net_rx     rx_mbps    host->guest --net-bytes, Mbit/s
# Guest kernel code is interpreted on kvm_pvm hosts: these numbers are dominated by the guest's
# own CPU cost there; compare VMMs only within one run of this script.

set -euo pipefail

readonly E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO_DIR="$(cd "${E2E_DIR}/../.." && pwd)"

runs=2
net_bytes=$((8 * 1024 * 1024))
vmms="hearth qemu"
timeout_s=900
build=1
build_dir="${REPO_DIR}/build"
guest_dir=""
qemu=qemu-system-x86_64
qemu_machine="microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on,acpi=off"
qemu_cpu="host,-arch-capabilities"
out=""
mem_mib=256
cache=unsafe

readonly HOST_IP=192.168.101.1 GUEST_IP=192.168.101.2 PORT=5201 MTU=65520 TAP=hearth-e2e0
readonly GUEST_MAC=06:00:c0:a8:65:02
readonly IMG_BYTES=$((8 * 1024 * 1024))

die() { printf 'run-e2e-devices: error: %s\n' "$*" >&2; exit 1; }
note() { printf 'run-e2e-devices: %s\n' "$*" >&2; }

while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --net-bytes) net_bytes="$2"; shift 2 ;;
    --vmms) vmms="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --guest-dir) guest_dir="$2"; shift 2 ;;
    --qemu) qemu="$2"; shift 2 ;;
    --qemu-machine) qemu_machine="$2"; shift 2 ;;
    --qemu-cpu) qemu_cpu="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
guest_dir="${guest_dir:-${build_dir}/guest}"
out="${out:-${build_dir}/e2e-devices}"
case "${cache}" in
  unsafe) h_cache=Unsafe ;;
  writeback) h_cache=Writeback ;;
  *) die "--cache must be unsafe or writeback" ;;
esac
((net_bytes % 8 == 0)) || die "--net-bytes must be a multiple of 8"
[[ $(id -u) == 0 ]] || die "needs root (ip netns, tap)"

# ------------------------------------------------------------------------------- prerequisites --
hearth="${build_dir}/src/hearth"
if ((build)) && [[ " ${vmms} " == *" hearth "* ]]; then
  [[ -f "${build_dir}/CMakeCache.txt" ]] || cmake -S "${REPO_DIR}" -B "${build_dir}" >&2
  cmake --build "${build_dir}" -j2 --target hearth >&2
fi
if ((build)); then
  # Cached builds take under a second; a build already running for the same variant holds its
  # lock, so this also waits for it (e.g. a QEMU kernel being rebuilt after a config change).
  "${REPO_DIR}/resources/build-guest.sh" --out "${guest_dir}" >&2
  [[ " ${vmms} " != *" qemu "* ]] ||
    "${REPO_DIR}/resources/build-guest.sh" --variant qemu-int3skip --out "${guest_dir}/qemu" >&2
fi
initrd="${guest_dir}/initramfs.cpio"
h_kernel="${guest_dir}/vmlinux"
q_kernel="${guest_dir}/qemu/vmlinux"
for f in "${initrd}" "${h_kernel}"; do
  [[ -f "$f" ]] || die "$f missing: run resources/build-guest.sh"
done
if [[ " ${vmms} " == *" qemu "* ]]; then
  [[ -f "${q_kernel}" ]] || die "${q_kernel} missing: run resources/build-guest.sh --variant qemu-int3skip"
  command -v "${qemu}" >/dev/null || die "${qemu} not found"
fi
[[ -x "${hearth}" ]] || die "${hearth} not built"
host_kind="$("${hearth}" --print-host-kind 2>/dev/null || echo unknown)"
# Hearth adds these itself on kvm_pvm hosts; QEMU needs them on its command line.
pvm_params=""
[[ "${host_kind}" == pvm ]] && pvm_params="noxsave clearcpuid=141,151,308 clocksource=kvm-clock"

mkdir -p "${out}"
work="$(mktemp -d "${out}/run.XXXXXX")"
ns="hearth-e2e-$$"
peer_pid=""
cleanup() {
  [[ -n "${peer_pid}" ]] && kill "${peer_pid}" 2>/dev/null || true
  ip netns del "${ns}" 2>/dev/null || true
}
trap cleanup EXIT

# --------------------------------------------------------------------------- namespace + tap --
ip netns add "${ns}"
ip -n "${ns}" link set lo up
ip -n "${ns}" tuntap add dev "${TAP}" mode tap
ip -n "${ns}" addr add "${HOST_IP}/24" dev "${TAP}"
ip -n "${ns}" link set "${TAP}" mtu "${MTU}"
ip -n "${ns}" link set "${TAP}" up

base_args="console=ttyS0 reboot=k panic=1 pci=off nomodule i8042.noaux i8042.nomux i8042.nopnp"
base_args+=" i8042.dumbkbd ip=${GUEST_IP}::${HOST_IP}:255.255.255.0::eth0:off"
base_args+=" hearth_agent.checks=blk:vdb,mtu:eth0:${MTU},net:${HOST_IP}:${PORT}:${net_bytes}:300"
base_args+=" hearth_agent.action=poweroff"

# field LINE KEY -> value of " KEY=" in LINE
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1" | head -n1; }

results="${work}/results.tsv"
: >"${results}"

# run_one VMM RUN -> appends "vmm run write_mbs read_mbs tx_mbps rx_mbps seconds status" to results
run_one() {
  local vmm="$1" run="$2" d="${work}/${1}-${2}"
  mkdir -p "$d"
  truncate -s 0 "$d/vda.img" "$d/vdb.img" 2>/dev/null || true
  truncate -s "${IMG_BYTES}" "$d/vda.img" "$d/vdb.img"
  local cmd=()
  if [[ "$vmm" == hearth ]]; then
    cat >"$d/vm.json" <<JSON
{
  "boot-source": {"kernel_image_path": "${h_kernel}", "initrd_path": "${initrd}",
                  "boot_args": "${base_args}"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": ${mem_mib}, "smt": false},
  "drives": [
    {"drive_id": "d0", "path_on_host": "$d/vda.img", "is_root_device": false, "is_read_only": false, "cache_type": "${h_cache}", "io_engine": "Sync"},
    {"drive_id": "d1", "path_on_host": "$d/vdb.img", "is_root_device": false, "is_read_only": false, "cache_type": "${h_cache}", "io_engine": "Sync"}
  ],
  "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "${TAP}", "guest_mac": "${GUEST_MAC}"}]
}
JSON
    cmd=("${hearth}" --no-api --config-file "$d/vm.json" --level Info)
  else
    cmd=("${qemu}" -M "${qemu_machine}" -enable-kvm -cpu "${qemu_cpu}" -smp 1 -m "${mem_mib}"
         -nodefaults -no-user-config -nographic -serial stdio
         -device isa-debug-exit,iobase=0x3f4,iosize=1
         -global virtio-mmio.force-legacy=false
         -drive "id=d0,file=$d/vda.img,format=raw,if=none,cache=${cache}" -device virtio-blk-device,drive=d0
         -drive "id=d1,file=$d/vdb.img,format=raw,if=none,cache=${cache}" -device virtio-blk-device,drive=d1
         -netdev "tap,id=n0,ifname=${TAP},script=no,downscript=no,vhost=off"
         -device "virtio-net-device,netdev=n0,mac=${GUEST_MAC}"
         -kernel "${q_kernel}" -initrd "${initrd}" -append "${base_args}${pvm_params:+ ${pvm_params}}")
  fi
  printf '%q ' "${cmd[@]}" >"$d/cmd.txt"; echo >>"$d/cmd.txt"

  ip netns exec "${ns}" python3 "${E2E_DIR}/net_peer.py" "${HOST_IP}" "${PORT}" "${net_bytes}" \
    "${timeout_s}" >"$d/peer.log" 2>&1 &
  peer_pid=$!
  local i
  for i in $(seq 100); do grep -q listening "$d/peer.log" 2>/dev/null && break; sleep 0.1; done
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  ip netns exec "${ns}" timeout "${timeout_s}" "${cmd[@]}" </dev/null >"$d/console.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  # The peer prints its verdict after the guest closed the connection: give it time to finish.
  for i in $(seq 150); do kill -0 "${peer_pid}" 2>/dev/null || break; sleep 0.1; done
  kill "${peer_pid}" 2>/dev/null || true
  wait "${peer_pid}" 2>/dev/null || true
  peer_pid=""

  local blk net peer status=""
  blk="$(tr -d '\r' <"$d/console.log" | grep -m1 'hearth-agent: blk vdb ' || true)"
  net="$(tr -d '\r' <"$d/console.log" | grep -m1 'hearth-agent: net ' || true)"
  peer="$(grep -m1 'net-peer: received' "$d/peer.log" || true)"
  # Hearth exits 0 on the agent's power-off; QEMU's isa-debug-exit exits (0 << 1) | 1 = 1.
  local ok_rc=0; [[ "$vmm" == qemu ]] && ok_rc=1
  [[ $rc == "$ok_rc" ]] || status="exit=$rc"
  [[ "$(field "$blk" write)" == ok && "$(field "$blk" read)" == ok ]] || status+=",blk-failed"
  [[ "$net" == *" rx=ok "* ]] || status+=",net-failed"
  [[ "$(field "$peer" rx_sum_ok)" == 1 ]] || status+=",peer:$(field "$peer" error)"
  status="${status#,}"; status="${status:-ok}"
  local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  local w r tx rx
  w=$(field "$blk" write_mbs); r=$(field "$blk" read_mbs)
  tx=$(field "$net" tx_mbps); rx=$(field "$net" rx_mbps)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$vmm" "$run" "${w:--}" "${r:--}" "${tx:--}" "${rx:--}" \
    "$secs" "$status" >>"${results}"
  printf 'run %s %-6s blk write %8s MB/s read %8s MB/s  net tx %8s Mbit/s rx %8s Mbit/s  %6s s  %s\n' \
    "$run" "$vmm" "${w:--}" "${r:--}" "${tx:--}" "${rx:--}" "$secs" "$status"
  [[ "$status" == ok ]] || note "$vmm run $run: $status (log: $d/console.log; peer: $d/peer.log)"
  return 0
}

read -r -a vmm_list <<<"${vmms}"
echo "e2e devices: hearth=${hearth} qemu=${qemu} host_kind=${host_kind} runs=${runs} net_bytes=${net_bytes} cache=${cache}"
echo "guest: hearth ${h_kernel}, qemu ${q_kernel}, initrd ${initrd}; logs: ${work}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((run = 1; run <= runs; run++)); do
  order=("${vmm_list[@]}")
  if ((run % 2 == 0)); then order=(); for ((k = ${#vmm_list[@]} - 1; k >= 0; k--)); do order+=("${vmm_list[k]}"); done; fi
  for vmm in "${order[@]}"; do run_one "$vmm" "$run"; done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------- summary --
python3 - "${results}" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
names = ["blk_write MB/s", "blk_read MB/s", "net_tx Mbit/s", "net_rx Mbit/s", "wall s"]
med = {}
for vmm in dict.fromkeys(r[0] for r in rows):
    ok = [r for r in rows if r[0] == vmm and r[7] == "ok"]
    bad = sum(1 for r in rows if r[0] == vmm and r[7] != "ok")
    vals = []
    for i in range(5):
        xs = [float(r[2 + i]) for r in ok if r[2 + i] != "-"]
        vals.append(statistics.median(xs) if xs else None)
    med[vmm] = vals
    print(f"summary: {vmm:6s} ok={len(ok)} failed={bad} " + "  ".join(
        f"{n.split()[0]}={'-' if v is None else f'{v:.2f}'}" for n, v in zip(names, vals)))
if "hearth" in med and "qemu" in med:
    for i, n in enumerate(names[:4]):
        h, q = med["hearth"][i], med["qemu"][i]
        if h is None or q is None or q == 0:
            print(f"ratio: {n:16s} hearth/qemu -")
        else:
            print(f"ratio: {n:16s} hearth {h:9.2f}  qemu {q:9.2f}  hearth/qemu {h / q:.3f}"
                  f"  {'target met' if h >= q else 'BELOW target (hearth < qemu)'}")
PY
