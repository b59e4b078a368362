#!/usr/bin/env bash
# Runs hearth_device_bench (virtio block / net / queue device paths on plain memory, no KVM)
# with repetitions, and host fio on the same image file in the same run as the block peer,
# then prints a summary table with device/fio and device/floor ratios. See benchmarks/README.md.
#
#   benchmarks/device/run-device-bench.sh [options]
#     --build-dir DIR     build tree (default: <repo>/build); configured and built when needed
#     --no-build          use the existing binary
#     --image PATH        existing image to use (kept); default: a fresh 1 GiB file under
#                         --image-dir, removed at the end
#     --image-dir DIR     where to make the image (default /var/tmp; must be a real disk)
#     --reps N            Google Benchmark repetitions (default 10)
#     --min-time S        --benchmark_min_time per repetition (default 0.2)
#     --fio-runtime S     seconds per fio job (default 5)
#     --fio-reps N        runs of every fio job (default 3)
#     --fio-extra "..."   extra fio options (default "--iomem_align=4096": page-aligned buffers
#                         like the guest's; fio's default malloc buffer is not page-aligned,
#                         which halves its 1 MiB page-cache copy rate on this host)
#     --sections "..."    any of: block net queue vsock (default all four)
#     --out-dir DIR       JSON and log (default <build-dir>/device-bench)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${repo}/build"
build=1
image=""
image_dir=/var/tmp
reps=10
min_time=0.2
fio_runtime=5
fio_reps=3
fio_extra="--iomem_align=4096"
sections="block net queue vsock"
out_dir=""

while (($#)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --image) image="$2"; shift 2 ;;
    --image-dir) image_dir="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --fio-runtime) fio_runtime="$2"; shift 2 ;;
    --fio-reps) fio_reps="$2"; shift 2 ;;
    --fio-extra) fio_extra="$2"; shift 2 ;;
    --sections) sections="$2"; shift 2 ;;
    --out-dir) out_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run-device-bench: unknown option $1" >&2; exit 2 ;;
  esac
done
out_dir="${out_dir:-${build_dir}/device-bench}"
mkdir -p "${out_dir}"
rm -f "${out_dir}"/*.json
log="${out_dir}/device-bench.log"
exec > >(tee "${log}") 2>&1

bin="${build_dir}/benchmarks/device/hearth_device_bench"
if ((build)); then
  if [[ ! -f "${build_dir}/CMakeCache.txt" ]]; then
    cmake -S "${repo}" -B "${build_dir}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "${build_dir}" -j"$(nproc)" --target hearth_device_bench
fi
[[ -x "${bin}" ]] || { echo "run-device-bench: ${bin} not built" >&2; exit 1; }

has() { [[ " ${sections} " == *" $1 "* ]]; }

# ---- host --------------------------------------------------------------------------------------
echo "== host"
date -Is
echo "kernel $(uname -r), $(nproc) CPUs, host kind: $([[ -d /sys/module/kvm_pvm ]] && echo pvm || \
  { grep -qw hypervisor /proc/cpuinfo && echo nested-or-vm || echo hardware; })"
echo "load: $(uptime)"
free -m | sed -n 1,2p

made_image=0
if has block; then
  command -v fio >/dev/null || { echo "run-device-bench: fio not installed (scripts/setup.sh --bench)" >&2; exit 1; }
  fio --version
  if [[ -z "${image}" ]]; then
    fstype="$(stat -f -c %T "${image_dir}")"
    if [[ "${fstype}" == tmpfs || "${fstype}" == ramfs ]]; then
      echo "run-device-bench: ${image_dir} is ${fstype}; use a directory on a real disk" >&2
      exit 1
    fi
    image="${image_dir}/hearth-device-bench-$$.img"
    echo "writing 1 GiB of random data to ${image}"
    dd if=/dev/urandom of="${image}" bs=1M count=1024 conv=fsync status=none
    made_image=1
    trap '[[ ${made_image} == 1 ]] && rm -f "${image}"' EXIT
  fi
  echo "image ${image}: $(stat -c %s "${image}") bytes on $(findmnt -no FSTYPE,SOURCE -T "${image}")"
  cat "${image}" >/dev/null  # Warm page cache (the device and fio both use buffered I/O).
fi

gb_flags=(--benchmark_repetitions="${reps}" --benchmark_min_time="${min_time}"
          --benchmark_display_aggregates_only=true --benchmark_out_format=json)

# ---- block: device, then fio on the same file, pattern by pattern --------------------------------
# fio peers: psync qd1 for the Sync engine (one preadv/pwritev at a time on the VMM thread, at
# any queue depth), io_uring at the same depth for the Async engine; libaio qd32 for reference.
fio_jobs=("psync:1" "io_uring:1" "io_uring:32" "libaio:32")
if has block; then
  for pattern in randread randwrite read write; do
    case "${pattern}" in rand*) bs=4k ;; *) bs=1M ;; esac
    echo
    echo "== block ${pattern} ${bs}: hearth_device_bench"
    echo "+ ${bin} --image=${image} --benchmark_filter=^Block/[A-Za-z]+/${pattern}/ ${gb_flags[*]}"
    "${bin}" --image="${image}" --benchmark_filter="^Block/[A-Za-z]+/${pattern}/" "${gb_flags[@]}" \
      --benchmark_out="${out_dir}/block-${pattern}.json"
    echo "== block ${pattern} ${bs}: fio (same file, buffered, page cache warm)"
    for ((r = 1; r <= fio_reps; ++r)); do
      for job in "${fio_jobs[@]}"; do
        engine="${job%%:*}"
        depth="${job##*:}"
        cmd=(fio --name=x --filename="${image}" --rw="${pattern}" --bs="${bs}" --iodepth="${depth}"
             --ioengine="${engine}" --runtime="${fio_runtime}" --time_based --direct=0
             --invalidate=0 ${fio_extra} --output-format=json
             --output="${out_dir}/fio-${pattern}-${engine}-qd${depth}-${r}.json")
        ((r == 1)) && echo "+ ${cmd[*]}"
        "${cmd[@]}"
      done
    done
  done
fi

if has net; then
  echo
  echo "== net: hearth_device_bench"
  "${bin}" --benchmark_filter='^Net/' "${gb_flags[@]}" --benchmark_out="${out_dir}/net.json"
fi
if has queue; then
  echo
  echo "== queue: hearth_device_bench"
  "${bin}" --benchmark_filter='^Queue/' "${gb_flags[@]}" --benchmark_out="${out_dir}/queue.json"
fi
if has vsock; then
  echo
  echo "== vsock: hearth_device_bench"
  "${bin}" --benchmark_filter='^Vsock/' "${gb_flags[@]}" --benchmark_out="${out_dir}/vsock.json"
fi
echo
echo "load after: $(uptime)"

# ---- summary ---------------------------------------------------------------------------------------
python3 - "${out_dir}" "${reps}" "${fio_reps}" <<'EOF'
import glob, json, os, re, statistics, sys

out, reps, fio_reps = sys.argv[1], sys.argv[2], sys.argv[3]

def runs(path):
    """name -> list of per-repetition benchmark entries (aggregates dropped)."""
    res = {}
    if not os.path.exists(path):
        return res
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        res.setdefault(b["run_name"], []).append(None if b.get("error_occurred") else b)
    return res

def stat(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)

def si(v, unit=""):
    for div, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v/div:.3g}{p}{unit}"
    return f"{v:.3g}{unit}"

def fmt(s, unit=""):
    if s is None:
        return "FAILED"
    m, lo, hi = s
    return f"{si(m, unit)} [{si(lo)}..{si(hi)}]"

print("\n==== summary: median [min..max]; device over", reps, "repetitions, fio over", fio_reps, "runs")

block = {}
for f in glob.glob(os.path.join(out, "block-*.json")):
    block.update(runs(f))
if block:
    def fio_iops(pattern, engine, depth):
        vals = []
        for f in sorted(glob.glob(os.path.join(out, f"fio-{pattern}-{engine}-qd{depth}-*.json"))):
            try:
                j = json.load(open(f))
            except ValueError:  # fio may prefix warnings; cut to the JSON object.
                t = open(f).read()
                j = json.loads(t[t.index("{"):])
            op = "read" if "read" in pattern else "write"
            vals.append(j["jobs"][0][op]["iops"])
        return stat(vals)
    print("\nblock (requests/s; 1 GiB image on disk, page cache warm, buffered; the Sync engine's")
    print("peer is fio psync, the Async engine's fio io_uring at the same depth)")
    hdr = f"{'pattern':<10}{'bs':<6}{'engine':<7}{'qd':<4}{'device req/s':<26}{'device B/s':<11}{'fio peer':<15}{'fio IOPS':<26}{'device/fio':<11}"
    print(hdr)
    met = total = 0
    for pattern, bs in (("randread", "4KiB"), ("randwrite", "4KiB"), ("read", "1MiB"), ("write", "1MiB")):
        for engine in ("Sync", "Async"):
            for qd in (1, 32):
                name = f"Block/{engine}/{pattern}/{bs}/qd{qd}/real_time"
                if name not in block:
                    continue
                d = stat([b["reqs"] if b else None for b in block[name]])
                bps = stat([b["bytes_per_second"] if b else None for b in block[name]])
                peer = ("psync", 1) if engine == "Sync" else ("io_uring", qd)
                f = fio_iops(pattern, *peer)
                ratio = d[0] / f[0] if d and f else None
                total += 1
                if ratio is not None and ratio >= 0.8:
                    met += 1
                print(f"{pattern:<10}{bs:<6}{engine:<7}{qd:<4}{fmt(d):<26}{si(bps[0]) if bps else '-':<11}"
                      f"{peer[0]+' qd'+str(peer[1]):<15}{fmt(f):<26}{(f'{ratio:.2f}' if ratio else '-'):<11}")
    for pattern in ("randread", "randwrite", "read", "write"):
        lib = fio_iops(pattern, "libaio", 32)
        if lib:
            print(f"  (fio libaio qd32 {pattern}: {fmt(lib)} IOPS)")
    print(f"target: device requests/s >= 0.80 x host fio on the same file: met {met}/{total}")

net = runs(os.path.join(out, "net.json"))
if net:
    print("\nnet (frames/s through a SOCK_SEQPACKET socketpair; floor = bare send+recv of the same frames)")
    print(f"{'frame':<8}{'path':<7}{'frames/s':<26}{'payload B/s':<13}{'device/floor':<12}")
    for size in ("1514B", "64KiB"):
        floor = stat([b["frames"] if b else None for b in net.get(f"Net/floor/{size}/real_time", [])])
        for path in ("TX", "RX", "floor"):
            rs = net.get(f"Net/{path}/{size}/real_time", [])
            s = stat([b["frames"] if b else None for b in rs])
            bps = stat([b["bytes_per_second"] if b else None for b in rs])
            ratio = f"{s[0]/floor[0]:.2f}" if s and floor and path != "floor" else "-"
            print(f"{size:<8}{path:<7}{fmt(s):<26}{si(bps[0]) if bps else '-':<13}{ratio:<12}")

queue = runs(os.path.join(out, "queue.json"))
if queue:
    print("\nqueue (Pop + AddUsed, ns per chain, CPU time)")
    for name, rs in queue.items():
        s = stat([b["time_per_chain"] * 1e9 if b else None for b in rs])
        label = name.replace("Queue/PopAddUsed/", "")
        print(f"{label:<16}{'FAILED' if s is None else f'{s[0]:.1f} ns [{s[1]:.1f}..{s[2]:.1f}]'}")
vsock = runs(os.path.join(out, "vsock.json"))
if vsock:
    print("\nvsock (through the UNIX-socket backend; floor = the same bytes over a bare socketpair)")
    floor_bps = stat([b["bytes_per_second"] if b else None for b in vsock.get("Vsock/floor/64KiB/real_time", [])])
    for name in ("Vsock/HostToGuest/64KiB/rxbuf:4KiB", "Vsock/HostToGuest/64KiB/rxbuf:64KiB",
                 "Vsock/GuestToHost/64KiB", "Vsock/floor/64KiB"):
        s = stat([b["bytes_per_second"] if b else None for b in vsock.get(name + "/real_time", [])])
        ratio = f"{s[0]/floor_bps[0]:.2f}" if s and floor_bps and "floor" not in name else "-"
        gib = f"{s[0]/2**30:.2f} GiB/s" if s else "FAILED"
        print(f"{name.replace('Vsock/', ''):<32}{fmt(s, 'B/s'):<30}{gib:<14}device/floor {ratio}")
    for name in ("Vsock/RoundTrip/1B", "Vsock/floor/RoundTrip/1B"):
        rs = vsock.get(name + "/real_time", [])
        p50 = stat([b["p50_us"] if b else None for b in rs])
        p99 = stat([b["p99_us"] if b else None for b in rs])
        if p50 and p99:
            print(f"{name.replace('Vsock/', ''):<32}p50 {p50[0]:.2f} us [{p50[1]:.2f}..{p50[2]:.2f}]  p99 {p99[0]:.2f} us [{p99[1]:.2f}..{p99[2]:.2f}]")
    print("targets: >= 1 GiB/s with 64 KiB writes, 1-byte round trip p50 < 20 us")
print(f"\nlog and JSON: {out}")
EOF
