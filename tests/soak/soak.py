#!/usr/bin/env python3
"""Soak: starts and stops many micro-VMs and checks that nothing is left behind.

  tests/soak/soak.py --hearth build/src/hearth --guests build/tests/guests \
      [--sequential 1000] [--parallel 1000 --concurrency 50] [--api-requests 1000]

Phases (each optional, in this order; Linux restores between parallel and api-requests):
  sequential N   N micro-VMs one after the other;
  parallel N     N micro-VMs, --concurrency of them running at any time;
  api-requests N one `hearth --api-sock` process with a running guest serves N API requests:
                 its RSS, fd count and thread count after the first tenth and at the end.
The micro-VMs alternate between two kinds:
  tiny     `hearth --no-api --config-file`: the hello guest with a virtio-blk drive (read-only,
           shared), a virtio-net device on its own tap (created by hearth, named hsoak<N>) and a
           vsock device (its UNIX socket in the VM's directory); the guest prints its greeting
           and powers off: exit 0 and the greeting on the console.
  restore  `hearth --api-sock`: PUT /snapshot/load of one snapshot of the counter guest (taken
           at the start, with a vsock device) with a vsock_override in the VM's directory; the
           restored guest must print two more "count" lines, then SIGTERM: exit 143.
Every VM must end as expected (no timeouts); then the VM's directory must hold no socket.

Before the first phase and after the last, it measures: MemAvailable and Shmem
(/proc/meminfo), this process's open fds and threads, the host's allocated file handles
(/proc/sys/fs/file-nr) and thread count, zombie processes (host-wide, and this process's
children), hearth processes running our binary, tap devices named hsoak*, and socket files
left under the work directory. It prints both columns and exits 1 on a leak:
  - any of: our fds or threads differ, a zombie child, a hearth process, an hsoak tap, a
    socket file;
  - MemAvailable fell by more than --mem-tolerance-mib (1024: other sessions on this host move
    it by hundreds of MiB; 1000 leaked 32 MiB guests would be 32 GiB), or Shmem (tmpfs, memfd:
    leaked guest memory files) or SUnreclaim (kernel objects: taps, sockets) grew by more than
    --kernel-tolerance-mib (64; one leaked 32 MiB memory file per ten VMs would be 3 GiB);
  - the host's file handles grew by more than --fd-tolerance (other sessions share the host).
Any failed VM also exits 1. Exit 2: bad arguments or missing files.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

TAP_PREFIX = "hsoak"
MEM_MIB = 32
VM_TIMEOUT = 60.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def api(sock, method, path, body=None, timeout=20.0):
    conn = UnixHTTPConnection(sock, timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def wait_for(predicate, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class VmFailure(Exception):
    pass


class Soak:
    def __init__(self, args):
        self.args = args
        self.hearth = os.path.realpath(args.hearth)
        self.hello = os.path.join(args.guests, "hello.elf")
        self.counter = os.path.join(args.guests, "counter.elf")
        self.blk_log = os.path.join(args.guests, "virtio_blk_log.elf")
        for p in (self.hearth, self.hello, self.counter, self.blk_log):
            if not os.access(p, os.R_OK):
                raise SystemExit(f"soak: {p} missing: build first")
        self.work = tempfile.mkdtemp(prefix="hearth-soak-")
        self.disk = os.path.join(self.work, "disk.img")
        with open(self.disk, "wb") as f:
            f.write(b"\0" * 65536)
        self.snap = os.path.join(self.work, "vm.snap")
        self.mem = os.path.join(self.work, "vm.mem")
        self.counter_lock = threading.Lock()
        self.next_id = 0
        self.failures = []
        self.seconds = {"tiny": [], "restore": []}

    # ---- one micro-VM ------------------------------------------------------------------------

    def new_id(self):
        with self.counter_lock:
            self.next_id += 1
            return self.next_id

    def vm_dir(self, vm_id):
        d = os.path.join(self.work, f"vm{vm_id}")
        os.mkdir(d)
        return d

    def run_tiny(self, vm_id):
        d = self.vm_dir(vm_id)
        config = {
            "boot-source": {"kernel_image_path": self.hello, "boot_args": "console=ttyS0"},
            "machine-config": {"vcpu_count": 1, "mem_size_mib": MEM_MIB, "smt": False},
            "drives": [{"drive_id": "disk0", "path_on_host": self.disk, "is_root_device": False,
                        "is_read_only": True}],
            "network-interfaces": [{"iface_id": "eth0",
                                    "host_dev_name": f"{TAP_PREFIX}{vm_id}"}],
            "vsock": {"guest_cid": 3, "uds_path": os.path.join(d, "v.sock")},
        }
        cfg = os.path.join(d, "vm.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        t0 = time.monotonic()
        try:
            r = subprocess.run([self.hearth, "--no-api", "--config-file", cfg],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=VM_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise VmFailure(f"tiny vm{vm_id}: timed out")
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0 or "hello from tiny guest" not in out:
            raise VmFailure(f"tiny vm{vm_id}: exit {r.returncode}\nstdout: {out[-500:]}\n"
                            f"stderr: {r.stderr.decode(errors='replace')[-1000:]}")
        self.finish_dir(d, f"tiny vm{vm_id}")
        return time.monotonic() - t0

    def start_api_vmm(self, d, name="api.sock"):
        sock = os.path.join(d, name)
        out = open(os.path.join(d, "out"), "wb")
        err = open(os.path.join(d, "err"), "wb")
        try:
            p = subprocess.Popen([self.hearth, "--api-sock", sock], stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err)
        finally:
            out.close()
            err.close()

        def answers():
            if p.poll() is not None or not os.path.exists(sock):
                return p.poll() is not None
            try:
                return api(sock, "GET", "/", timeout=2)[0] == 200
            except OSError:
                return False

        if not wait_for(answers, 20) or p.poll() is not None:
            p.kill()
            p.wait()
            raise VmFailure(f"{d}: the API socket did not answer: {read_text(os.path.join(d, 'err'))}")
        return p, sock

    def stop(self, p, what):
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise VmFailure(f"{what}: did not stop within 20 s of SIGTERM")
        if code != 128 + signal.SIGTERM:
            raise VmFailure(f"{what}: SIGTERM gave exit {code}, expected 143")

    def run_restore(self, vm_id):
        d = self.vm_dir(vm_id)
        t0 = time.monotonic()
        p, sock = self.start_api_vmm(d)
        what = f"restore vm{vm_id}"
        try:
            status, body = api(sock, "PUT", "/snapshot/load", {
                "snapshot_path": self.snap,
                "mem_backend": {"backend_type": "File", "backend_path": self.mem},
                "resume_vm": True,
                "vsock_override": {"uds_path": os.path.join(d, "v.sock")},
            })
            if status != 204:
                raise VmFailure(f"{what}: /snapshot/load -> {status} {body}")
            out_path = os.path.join(d, "out")
            if not wait_for(lambda: read_text(out_path).count("count ") >= 2, 30, 0.02):
                raise VmFailure(f"{what}: the restored guest does not count: "
                                f"{read_text(out_path)[-300:]} {read_text(os.path.join(d, 'err'))}")
            if "counter start" in read_text(out_path):
                raise VmFailure(f"{what}: the guest rebooted instead of resuming")
            self.stop(p, what)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.finish_dir(d, what)
        return time.monotonic() - t0

    def finish_dir(self, d, what):
        left = [n for n in os.listdir(d) if stat.S_ISSOCK(os.lstat(os.path.join(d, n)).st_mode)]
        if left:
            raise VmFailure(f"{what}: sockets left behind: {left}")
        shutil.rmtree(d, ignore_errors=True)

    def run_one(self, index):
        vm_id = self.new_id()
        kind = "tiny" if index % 2 == 0 else "restore"
        try:
            s = self.run_tiny(vm_id) if kind == "tiny" else self.run_restore(vm_id)
            with self.counter_lock:
                self.seconds[kind].append(s)
        except (VmFailure, OSError) as e:
            with self.counter_lock:
                self.failures.append(str(e))

    # ---- the snapshot every restore loads ----------------------------------------------------

    def make_snapshot(self):
        d = os.path.join(self.work, "base")
        os.mkdir(d)
        p, sock = self.start_api_vmm(d)
        try:
            for method, path, body in [
                ("PUT", "/boot-source", {"kernel_image_path": self.counter,
                                         "boot_args": "console=ttyS0"}),
                ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB}),
                ("PUT", "/vsock", {"guest_cid": 3, "uds_path": os.path.join(d, "v.sock")}),
                ("PUT", "/actions", {"action_type": "InstanceStart"}),
            ]:
                status, text = api(sock, method, path, body)
                if status != 204:
                    raise SystemExit(f"soak: base VM {method} {path} -> {status} {text}")
            if not wait_for(lambda: "count 3\n" in read_text(os.path.join(d, "out")), 60, 0.02):
                raise SystemExit("soak: the base counter guest does not count")
            for method, path, body in [
                ("PATCH", "/vm", {"state": "Paused"}),
                ("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": self.snap,
                                             "mem_file_path": self.mem}),
            ]:
                status, text = api(sock, method, path, body)
                if status != 204:
                    raise SystemExit(f"soak: base VM {method} {path} -> {status} {text}")
            self.stop(p, "base VM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d)

    def virtio_load(self, seconds):
        """One hearth process whose guest (virtio_blk_log) does virtio-blk requests for `seconds`:
        the VMM's RSS, fds and threads once warm and at the end, and the requests done."""
        d = os.path.join(self.work, "virtio")
        os.mkdir(d)
        image = os.path.join(d, "disk.img")
        with open(image, "wb") as f:
            f.truncate(1 << 20)
        cfg = os.path.join(d, "vm.json")
        with open(cfg, "w") as f:
            json.dump({
                "boot-source": {"kernel_image_path": self.blk_log,
                                "boot_args": "console=ttyS0 blk.mask=0x3f"},
                "machine-config": {"vcpu_count": 1, "mem_size_mib": MEM_MIB},
                "drives": [{"drive_id": "disk0", "path_on_host": image, "is_root_device": False,
                            "is_read_only": False, "cache_type": "Writeback"}],
            }, f)
        out_path = os.path.join(d, "out")
        with open(out_path, "wb") as out, open(os.path.join(d, "err"), "wb") as err:
            p = subprocess.Popen([self.hearth, "--no-api", "--config-file", cfg],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err)

        def iterations():
            lines = [l for l in read_text(out_path).splitlines() if l.startswith("blk ")]
            bad = [l for l in lines if not l.endswith("w=0 f=0 r=0 data=ok last=0")]
            if bad:
                raise VmFailure(f"virtio load: the guest saw a failed request: {bad[0]}")
            return int(lines[-1].split()[1]) + 1 if lines else 0

        try:
            t0 = time.monotonic()
            if not wait_for(lambda: iterations() >= 129, 60, 0.05):
                raise VmFailure(f"virtio load: the guest does not run: {read_text(out_path)[-300:]}")
            warm_requests = 4 * iterations()
            warm = settled_usage(p.pid)
            time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
            end = settled_usage(p.pid)
            end_requests = 4 * iterations()
            self.stop(p, "virtio load VM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d)
        return warm_requests, warm, end_requests, end

    # ---- Linux snapshot restores ---------------------------------------------------------------

    LINUX_ECHO_PORT = 5000

    def make_linux_snapshot(self, guest_dir):
        """Boots the bundled Linux guest (resources/build-guest.sh) with the agent's vsock echo
        server and a long sleep (netwait) that keeps it alive, and snapshots it."""
        kernel = os.path.join(guest_dir, "vmlinux")
        initrd = os.path.join(guest_dir, "initramfs.cpio")
        for f in (kernel, initrd):
            if not os.access(f, os.R_OK):
                raise SystemExit(f"soak: {f} missing: run resources/build-guest.sh")
        self.linux_snap = os.path.join(self.work, "linux.snap")
        self.linux_mem = os.path.join(self.work, "linux.mem")
        d = os.path.join(self.work, "linux-base")
        os.mkdir(d)
        p, sock = self.start_api_vmm(d)
        try:
            t0 = time.monotonic()
            args = ("console=ttyS0 reboot=k panic=-1 hearth_agent.checks=vsock_echo:"
                    f"{self.LINUX_ECHO_PORT},netwait:3600000 hearth_agent.action=poweroff")
            for method, path, body in [
                ("PUT", "/boot-source", {"kernel_image_path": kernel, "initrd_path": initrd,
                                         "boot_args": args}),
                ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
                ("PUT", "/vsock", {"guest_cid": 3, "uds_path": os.path.join(d, "v.sock")}),
                ("PUT", "/actions", {"action_type": "InstanceStart"}),
            ]:
                status, text = api(sock, method, path, body)
                if status != 204:
                    raise SystemExit(f"soak: Linux base VM {method} {path} -> {status} {text}")
            out = os.path.join(d, "out")
            if not wait_for(lambda: "netwait ms=" in read_text(out) or
                            f"vsock_echo port={self.LINUX_ECHO_PORT} listen=ok" in read_text(out),
                            300, 0.2):
                raise SystemExit(f"soak: the Linux guest did not start its echo server: "
                                 f"{read_text(out)[-500:]}")
            boot_s = time.monotonic() - t0
            time.sleep(1.0)  # Into the sleep.
            if not self.linux_echo(os.path.join(d, "v.sock")):
                raise SystemExit("soak: the Linux guest does not echo before the snapshot")
            for method, path, body in [
                ("PATCH", "/vm", {"state": "Paused"}),
                ("PUT", "/snapshot/create", {"snapshot_type": "Full",
                                             "snapshot_path": self.linux_snap,
                                             "mem_file_path": self.linux_mem}),
            ]:
                status, text = api(sock, method, path, body, timeout=120)
                if status != 204:
                    raise SystemExit(f"soak: Linux base VM {method} {path} -> {status} {text}")
            self.stop(p, "Linux base VM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d)
        return boot_s

    def linux_echo(self, uds, timeout=60.0):
        """CONNECT to the guest's echo port through the vsock socket; True when "ping" comes
        back."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(uds)
            s.sendall(f"CONNECT {self.LINUX_ECHO_PORT}\n".encode())
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(1)
                if not chunk:
                    return False
                line += chunk
            if not line.startswith(b"OK "):
                return False
            s.sendall(b"ping")
            got = b""
            while len(got) < 4:
                chunk = s.recv(4 - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == b"ping"
        except OSError:
            return False
        finally:
            s.close()

    def run_linux_restore(self):
        vm_id = self.new_id()
        d = self.vm_dir(vm_id)
        what = f"Linux restore vm{vm_id}"
        t0 = time.monotonic()
        p, sock = self.start_api_vmm(d)
        try:
            status, body = api(sock, "PUT", "/snapshot/load", {
                "snapshot_path": self.linux_snap,
                "mem_backend": {"backend_type": "File", "backend_path": self.linux_mem},
                "resume_vm": True,
                "vsock_override": {"uds_path": os.path.join(d, "v.sock")},
            }, timeout=60)
            if status != 204:
                raise VmFailure(f"{what}: /snapshot/load -> {status} {body}")
            if not self.linux_echo(os.path.join(d, "v.sock")):
                raise VmFailure(f"{what}: no echo over vsock: {read_text(os.path.join(d, 'err'))}")
            if "Linux version" in read_text(os.path.join(d, "out")):
                raise VmFailure(f"{what}: the guest rebooted instead of resuming")
            self.stop(p, what)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.finish_dir(d, what)
        return time.monotonic() - t0

    # ---- phases --------------------------------------------------------------------------------

    def sequential(self, n):
        t0 = time.monotonic()
        for i in range(n):
            self.run_one(i)
            if self.failures and len(self.failures) > 20:
                break
        return time.monotonic() - t0

    def parallel(self, n, concurrency):
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(self.run_one, range(n)))
        return time.monotonic() - t0

    def api_requests(self, n):
        """One hearth process with a running counter guest serving n requests."""
        d = os.path.join(self.work, "api")
        os.mkdir(d)
        p, sock = self.start_api_vmm(d)
        try:
            for method, path, body in [
                ("PUT", "/boot-source", {"kernel_image_path": self.counter,
                                         "boot_args": "console=ttyS0"}),
                ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB}),
                ("PUT", "/actions", {"action_type": "InstanceStart"}),
            ]:
                status, text = api(sock, method, path, body)
                if status != 204:
                    raise VmFailure(f"api VM {method} {path} -> {status} {text}")
            requests = [("GET", "/", None, 200), ("GET", "/machine-config", None, 200),
                        ("GET", "/vm/config", None, 200),
                        ("PUT", "/machine-config", {"vcpu_count": 1}, 400),
                        ("GET", "/nowhere", None, 400),
                        ("PATCH", "/vm", {"state": "Paused"}, 204),
                        ("PATCH", "/vm", {"state": "Resumed"}, 204)]
            warmup = max(1, n // 10)
            samples = {}
            bad = []
            for i in range(n):
                method, path, body, want = requests[i % len(requests)]
                status, text = api(sock, method, path, body)
                if status != want:
                    bad.append(f"{method} {path} -> {status} {text[:200]}")
                if i + 1 == warmup:
                    samples["warm"] = settled_usage(p.pid)
            samples["end"] = settled_usage(p.pid)
            if bad:
                raise VmFailure(f"api: {len(bad)} unexpected answers, first: {bad[0]}")
            self.stop(p, "api VM")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.finish_dir(d, "api VM")
        return warmup, samples["warm"], samples["end"]


# ---- measurements --------------------------------------------------------------------------------

def meminfo():
    values = {}
    for line in read_text("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0])
    return values


def settled_usage(pid):
    """process_usage with the fewest fds over one second: the API server closes its end of the
    last connection a moment after the client did; a leak stays."""
    samples = []
    for _ in range(10):
        samples.append(process_usage(pid))
        time.sleep(0.1)
    return min(samples, key=lambda u: (u["fds"], u["threads"]))


def process_usage(pid):
    rss = 0
    threads = 0
    for line in read_text(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def host_state(hearth, work):
    # The median of three samples: other work on the host moves these.
    samples = []
    for _ in range(3):
        samples.append(meminfo())
        time.sleep(0.3)
    mi = {key: median([m[key] for m in samples]) for key in samples[0]}
    me = os.getpid()
    zombies, my_zombies, hearths, host_threads = [], [], [], 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        text = read_text(f"/proc/{entry}/stat")
        if not text:
            continue
        fields = text[text.rfind(")") + 2:].split()
        state, ppid, nthreads = fields[0], int(fields[1]), int(fields[17])
        host_threads += nthreads
        if state == "Z":
            zombies.append(int(entry))
            if ppid == me:
                my_zombies.append(int(entry))
        try:
            if os.readlink(f"/proc/{entry}/exe") == hearth:
                hearths.append(int(entry))
        except OSError:
            pass
    taps = sorted(n for n in os.listdir("/sys/class/net") if n.startswith(TAP_PREFIX))
    sockets = []
    for root, _, files in os.walk(work):
        for name in files:
            path = os.path.join(root, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    sockets.append(path)
            except OSError:
                pass
    return {
        "MemAvailable MiB": mi["MemAvailable"] // 1024,
        "Shmem MiB": mi["Shmem"] // 1024,
        "SUnreclaim MiB": mi["SUnreclaim"] // 1024,
        "our open fds": len(os.listdir("/proc/self/fd")),
        "our threads": len(os.listdir("/proc/self/task")),
        "host file handles": int(read_text("/proc/sys/fs/file-nr").split()[0]),
        "host threads": host_threads,
        "host zombies": len(zombies),
        "our zombie children": len(my_zombies),
        "hearth processes (this binary)": len(hearths),
        f"{TAP_PREFIX}* tap devices": len(taps),
        "socket files under the work dir": len(sockets),
    }


def median(values):
    s = sorted(values)
    if not s:
        return float("nan")
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def asan_build(binary):
    """True when `binary` links AddressSanitizer's runtime (scripts/build.sh --sanitize)."""
    with open(binary, "rb") as f:
        return b"libasan.so" in f.read()


def vmm_stayed_flat(what, during, warm_n, warm, end_n, end, rss_tolerance_kib):
    """Prints one VMM's RSS, fds and threads after warm-up and at the end; False on growth."""
    print(f"{what}: after {warm_n}: RSS {warm['rss_kib']} KiB, {warm['fds']} fds, "
          f"{warm['threads']} threads; after {end_n}: RSS {end['rss_kib']} KiB, "
          f"{end['fds']} fds, {end['threads']} threads")
    flat = True
    if end["fds"] != warm["fds"] or end["threads"] != warm["threads"]:
        flat = False
        print(f"LEAK: the VMM's fd or thread count grew {during}")
    if rss_tolerance_kib is None:
        print("  (RSS not compared: AddressSanitizer build, whose quarantine keeps freed memory; "
              "LeakSanitizer checks each VMM for leaks at its exit instead)")
    elif end["rss_kib"] - warm["rss_kib"] > rss_tolerance_kib:
        flat = False
        print(f"LEAK: the VMM's RSS grew by more than {rss_tolerance_kib} KiB {during}")
    return flat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hearth", required=True)
    ap.add_argument("--guests", required=True, help="directory with hello.elf and counter.elf")
    ap.add_argument("--sequential", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--api-requests", type=int, default=0)
    ap.add_argument("--virtio-seconds", type=float, default=0)
    ap.add_argument("--linux-restores", type=int, default=0,
                    help="restores of one snapshot of the bundled Linux guest (boots it once)")
    ap.add_argument("--linux-guest", default=None,
                    help="resources/build-guest.sh output (default: <guests>/../../guest)")
    ap.add_argument("--mem-tolerance-mib", type=int, default=1024)
    ap.add_argument("--kernel-tolerance-mib", type=int, default=64)
    ap.add_argument("--fd-tolerance", type=int, default=2000)
    ap.add_argument("--rss-tolerance-kib", type=int, default=1024)
    args = ap.parse_args()
    if min(args.sequential, args.parallel, args.api_requests) < 0 or args.concurrency < 1:
        print("soak: counts must be >= 0 and --concurrency >= 1", file=sys.stderr)
        return 2

    if args.linux_guest is None:
        args.linux_guest = os.path.join(args.guests, "..", "..", "guest")
    soak = Soak(args)
    ok = True
    try:
        soak.make_snapshot()
        report = []
        if args.linux_restores:
            boot_s = soak.make_linux_snapshot(args.linux_guest)
            report.append(f"Linux base VM: echo server up {boot_s:.1f} s after InstanceStart")
        before = host_state(soak.hearth, soak.work)
        if args.sequential:
            s = soak.sequential(args.sequential)
            report.append(f"sequential: {args.sequential} VMs in {s:.1f} s")
        if args.parallel:
            s = soak.parallel(args.parallel, args.concurrency)
            report.append(f"parallel: {args.parallel} VMs, {args.concurrency} at a time, "
                          f"in {s:.1f} s")
        if args.linux_restores:
            t0 = time.monotonic()
            for _ in range(args.linux_restores):
                try:
                    soak.seconds.setdefault("Linux restore", []).append(soak.run_linux_restore())
                except VmFailure as e:
                    soak.failures.append(str(e))
            report.append(f"Linux restores: {args.linux_restores} in sequence in "
                          f"{time.monotonic() - t0:.1f} s")
        api_result = soak.api_requests(args.api_requests) if args.api_requests else None
        virtio_result = soak.virtio_load(args.virtio_seconds) if args.virtio_seconds else None
        # Let exiting processes and the kernel settle (tap teardown, socket release).
        time.sleep(1.0)
        after = host_state(soak.hearth, soak.work)
        # MemAvailable moves with everything else on a shared host (a compiler takes 1 GiB):
        # when it is out of tolerance, give transient work up to a minute to end.
        for _ in range(12):
            if before["MemAvailable MiB"] - after["MemAvailable MiB"] <= args.mem_tolerance_mib:
                break
            time.sleep(5)
            after = host_state(soak.hearth, soak.work)
    except VmFailure as e:
        soak.failures.append(str(e))
        before = after = None
    finally:
        shutil.rmtree(soak.work, ignore_errors=True)

    for line in report if before else []:
        print(line)
    for kind, values in soak.seconds.items():
        if values:
            print(f"  {kind}: {len(values)} VMs, start-to-exit median {median(values) * 1000:.0f} ms,"
                  f" p90 {percentile(values, 0.9) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms")
    if soak.failures:
        ok = False
        print(f"FAIL: {len(soak.failures)} VMs failed; the first ones:")
        for f in soak.failures[:5]:
            print("  " + f.replace("\n", "\n    "))
    if before and after:
        print(f"{'measure':<34} {'before':>10} {'after':>10}")
        for key in before:
            print(f"{key:<34} {before[key]:>10} {after[key]:>10}")
        exact = ["our open fds", "our threads"]
        zero = ["our zombie children", "hearth processes (this binary)",
                f"{TAP_PREFIX}* tap devices", "socket files under the work dir"]
        for key in exact:
            if after[key] != before[key]:
                ok = False
                print(f"LEAK: {key}: {before[key]} -> {after[key]}")
        for key in zero:
            if after[key] != 0:
                ok = False
                print(f"LEAK: {key}: {after[key]} left")
        if before["MemAvailable MiB"] - after["MemAvailable MiB"] > args.mem_tolerance_mib:
            ok = False
            print(f"LEAK: MemAvailable fell by more than {args.mem_tolerance_mib} MiB")
        if after["Shmem MiB"] - before["Shmem MiB"] > args.kernel_tolerance_mib:
            ok = False
            print(f"LEAK: Shmem grew by more than {args.kernel_tolerance_mib} MiB")
        if after["SUnreclaim MiB"] - before["SUnreclaim MiB"] > args.kernel_tolerance_mib:
            ok = False
            print(f"LEAK: unreclaimable kernel memory grew by more than "
                  f"{args.kernel_tolerance_mib} MiB")
        if after["host file handles"] - before["host file handles"] > args.fd_tolerance:
            ok = False
            print(f"LEAK: host file handles grew by more than {args.fd_tolerance}")
        rss_tolerance_kib = None if asan_build(args.hearth) else args.rss_tolerance_kib
        if api_result:
            warmup, warm, end = api_result
            ok &= vmm_stayed_flat(f"one VMM serving {args.api_requests} API requests (running guest)",
                                  "while serving requests", warmup, warm, args.api_requests, end,
                                  rss_tolerance_kib)
        if virtio_result:
            warm_requests, warm, end_requests, end = virtio_result
            ok &= vmm_stayed_flat(f"one VMM whose guest does virtio-blk requests for "
                                  f"{args.virtio_seconds:g} s", "under virtio load",
                                  warm_requests, warm, end_requests, end, rss_tolerance_kib)
    print("soak: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
