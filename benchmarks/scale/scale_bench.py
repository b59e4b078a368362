#!/usr/bin/env python3
"""Hearth at scale: creation rate, density and boot-time breakdown, written up as a report.

  benchmarks/scale/scale_bench.py [--sections "tiny restore density linux"] [options]

Sections (each one prints its figures; the markdown report and the SVG get all of them):
  tiny     tiny-guest creation rate: whole `hearth --no-api --config-file` processes started
           with C launches in flight (C swept), counted when the guest's first output byte
           arrives (the guest's first instructions: boot-timer write, then the console), N per
           repetition; QEMU microvm the same way (its ratio). The Debug start-up timeline of
           the C=1 boots is the VMM set-up breakdown.
  restore  restore rate: one Linux guest (bundled kernel + in-kernel agent with a vsock echo
           listener) booted once and snapshotted; fresh `hearth --api-sock` processes each
           PUT /snapshot/load (File backend, resume_vm, vsock_override) and count when a host
           client got `OK` to `CONNECT <port>` on the clone's vsock socket and its byte echoed.
           Each clone is killed once it answered (churn).
  density  restored clones kept alive, ramped up step by step; at each step every clone must
           answer over vsock again; PSS per VM, MemAvailable, load, CPU busy while idle.
  linux    Linux boots (few: the guest kernel is interpreted on kvm_pvm hosts): VMM set-up,
           kernel and init phases from the boot timer, Hearth's Debug timeline and the guest's
           console timestamps.
Everything runs in a private temporary directory; every process started is killed and the
directory removed on exit, error or signal.
"""
import argparse
import datetime
import errno
import json
import os
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROG = "scale_bench"
ECHO_PORT = 5000
HOLD_PORT = 5999
GUEST_CID = 3
PVM_PARAMS = "noxsave clearcpuid=141,151,308 clocksource=kvm-clock"  # what Hearth adds itself on kvm_pvm hosts
QEMU_MACHINE = "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on,acpi=off"
QEMU_CPU = "host,-arch-capabilities"
LINUX_ARGS = ("console=ttyS0 reboot=k panic=-1 pci=off nomodule i8042.noaux i8042.nomux "
              "i8042.nopnp i8042.dumbkbd printk.time=1")


def mono():
    return time.monotonic()


class Fail(Exception):
    """A fatal, one-line error."""


# ------------------------------------------------------------------------------ processes --
class Procs:
    """Every child process this benchmark starts: spawned with posix_spawn, reaped without
    blocking, all killed at the end."""

    def __init__(self, work):
        self.work = work
        self.live = {}      # pid -> name
        self.exited = {}    # pid -> wait status
        self.cpu = {}       # pid -> user + system CPU ms of the whole process life (exit included)
        self.stdin_r, self.stdin_w = os.pipe()  # an idle terminal for every VMM's console
        os.set_inheritable(self.stdin_r, False)

    def spawn(self, argv, stdout=None, stderr=None, name=""):
        """stdout/stderr: a path (file), an int (fd to dup) or None (/dev/null)."""
        actions = [(os.POSIX_SPAWN_DUP2, self.stdin_r, 0)]
        for fd, target in ((1, stdout), (2, stderr)):
            if isinstance(target, int):
                actions.append((os.POSIX_SPAWN_DUP2, target, fd))
            else:
                actions.append((os.POSIX_SPAWN_OPEN, fd, target or os.devnull,
                                os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        self.live[pid] = name
        return pid

    def reap(self):
        while self.live:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                self.live.clear()
                return
            if pid == 0:
                return
            self.live.pop(pid, None)
            self.exited[pid] = status
            self.cpu[pid] = (usage.ru_utime + usage.ru_stime) * 1000

    def kill(self, pid):
        if pid in self.live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait_gone(self, pids, timeout):
        deadline = mono() + timeout
        while any(p in self.live for p in pids) and mono() < deadline:
            self.reap()
            time.sleep(0.005)
        return [p for p in pids if p in self.live]

    def kill_all(self):
        pids = list(self.live)
        for pid in pids:
            self.kill(pid)
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.live.clear()


def exit_code(status):
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return -os.WTERMSIG(status)


# ------------------------------------------------------------------------------- stats --
def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


def summary(xs, unit="", fmt="%.2f"):
    if not xs:
        return "no samples"
    return ("median " + fmt + "%s (p10 " + fmt + ", p90 " + fmt + ", min " + fmt + ", max " + fmt +
            ", n=%d)") % (statistics.median(xs), unit, pct(xs, 0.1), pct(xs, 0.9), min(xs), max(xs),
                          len(xs))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_busy_fraction(seconds):
    """Host CPU busy fraction (all CPUs) over `seconds`, from /proc/stat."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v), idle
    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ------------------------------------------------------------------------------- HTTP --
def http_request(method, path, body=None):
    data = json.dumps(body) if body is not None else ""
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" % (method, path)
    if data:
        head += "Content-Length: %d\r\n" % len(data)
    return (head + "\r\n" + data).encode()


def http_parse(raw):
    """(status, body) when `raw` holds a whole response, else None."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = raw[:end].decode("latin-1")
    length = 0
    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
    if m:
        length = int(m.group(1))
    if len(raw) < end + 4 + length:
        return None
    return int(head.split()[1]), raw[end + 4:end + 4 + length].decode("utf-8", "replace")


def api_call(sock_path, method, path, body=None, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(http_request(method, path, body))
        raw = b""
        while True:
            r = http_parse(raw)
            if r:
                return r
            chunk = s.recv(65536)
            if not chunk:
                raise Fail("%s %s: connection closed before a whole response" % (method, path))
            raw += chunk
    finally:
        s.close()


def expect_204(sock_path, method, path, body=None):
    status, text = api_call(sock_path, method, path, body)
    if status != 204:
        raise Fail("%s %s -> %d %s" % (method, path, status, text.strip()))


def wait_api(sock_path, pid, procs, timeout=10):
    deadline = mono() + timeout
    while mono() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock_path)
            return
        except OSError:
            pass
        finally:
            s.close()
        procs.reap()
        if pid not in procs.live:
            raise Fail("hearth (%s) exited before its API socket answered" % sock_path)
        time.sleep(0.002)
    raise Fail("hearth API socket %s did not answer within %d s" % (sock_path, timeout))


def vsock_echo_once(uds, port, timeout):
    """CONNECT <port>, expect OK, echo one byte. Returns None or an error text."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(uds)
        s.sendall(b"CONNECT %d\n" % port)
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                return "closed after %r" % line
            line += c
        if not line.startswith(b"OK "):
            return "answer %r" % line
        s.sendall(b"x")
        if s.recv(1) != b"x":
            return "no echo"
        return None
    except OSError as e:
        return str(e)
    finally:
        s.close()


# --------------------------------------------------------------------- tiny-guest rate --
def tiny_argv(o, vmm, work, idx, debug):
    if vmm == "hearth":
        argv = [o.hearth, "--no-api", "--config-file", o.tiny_config, "--boot-timer",
                "--id", "t%d" % idx]
        if debug:
            argv += ["--level", "Debug"]
        return argv
    return [o.qemu, "-M", QEMU_MACHINE, "-enable-kvm", "-cpu", QEMU_CPU, "-smp", "1", "-m", "128",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0x3f4,iosize=1", "-kernel", o.tiny_kernel,
            "-append", "console=ttyS0"]


def tiny_batch(o, procs, vmm, conc, n, debug=False, timeout=30.0):
    """Starts n tiny-guest VMMs with at most `conc` not yet at their first guest output.
    Returns dict(rate, lat_ms[], fails[], stderr paths of the successes)."""
    sel = selectors.DefaultSelector()
    ok_exit = 0 if vmm == "hearth" else 1
    launched, waiting, results, fails = 0, 0, [], []
    recs = {}
    t0 = mono()
    t_last = t0
    while launched < n or recs:
        while waiting < conc and launched < n:
            r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            err = os.path.join(procs.work, "tiny-%s-%d.err" % (vmm, launched))
            t = mono()
            pid = procs.spawn(tiny_argv(o, vmm, procs.work, launched, debug), stdout=w, stderr=err,
                              name="tiny")
            os.close(w)
            rec = {"pid": pid, "t": t, "first": None, "fd": r, "err": err, "eof": False}
            recs[r] = rec
            sel.register(r, selectors.EVENT_READ, rec)
            launched += 1
            waiting += 1
        for key, _ in sel.select(timeout=0.05):
            rec = key.data
            try:
                data = os.read(rec["fd"], 65536)
            except BlockingIOError:
                continue
            now = mono()
            if data and rec["first"] is None:
                rec["first"] = now
                t_last = now
                waiting -= 1
                results.append(((now - rec["t"]) * 1000, rec))
            if not data:
                sel.unregister(rec["fd"])
                os.close(rec["fd"])
                del recs[rec["fd"]]
                rec["eof"] = True
                if rec["first"] is None:
                    waiting -= 1
                    fails.append("%s pid %d: console closed without output" % (vmm, rec["pid"]))
        now = mono()
        for rec in list(recs.values()):
            if now - rec["t"] > timeout:
                procs.kill(rec["pid"])
                sel.unregister(rec["fd"])
                os.close(rec["fd"])
                del recs[rec["fd"]]
                if rec["first"] is None:
                    waiting -= 1
                    fails.append("%s pid %d: no output within %.0f s" % (vmm, rec["pid"], timeout))
        procs.reap()
    sel.close()
    pids = [r["pid"] for _, r in results]
    left = procs.wait_gone(pids, 10)
    for pid in left:
        procs.kill(pid)
    procs.wait_gone(left, 5)
    good = []
    for lat, rec in results:
        st = procs.exited.get(rec["pid"])
        if st is None or exit_code(st) != ok_exit:
            fails.append("%s pid %d: exit %s (expected %d)" % (
                vmm, rec["pid"], "none" if st is None else exit_code(st), ok_exit))
        else:
            good.append((lat, rec))
    ok = len(results)
    rate = ok / (t_last - t0) if ok and t_last > t0 else 0.0
    return {"rate": rate, "lat": [l for l, _ in good], "fails": fails, "recs": [r for _, r in good],
            "cpu": [procs.cpu[r["pid"]] for _, r in good if r["pid"] in procs.cpu]}


BOOT_TIME_RE = re.compile(r"Guest-boot-time = (\d+) us")
MILESTONE_RE = re.compile(r"start-up: (.+?) at (\d+) us")


def parse_vmm_timeline(path):
    """Hearth's Debug start-up milestones and boot-timer line: {name: us}."""
    out = {}
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return out
    for m in MILESTONE_RE.finditer(text):
        out.setdefault(m.group(1), int(m.group(2)))
    m = BOOT_TIME_RE.search(text)
    if m:
        out["first guest instruction (boot timer)"] = int(m.group(1))
    return out


def section_tiny(o, procs, rep):
    rep.log("## tiny: creation rate to the first guest output (tiny guest)")
    vmms = ["hearth"] + (["qemu"] if o.qemu else [])
    curve = {v: {} for v in vmms}
    for conc in o.tiny_conc:
        for vmm in vmms:
            n = o.tiny_n if vmm == "hearth" else o.qemu_n
            rates, lats, fails, cpus = [], [], [], []
            for r in range(o.reps):
                res = tiny_batch(o, procs, vmm, conc, n)
                rates.append(res["rate"])
                lats += res["lat"]
                fails += res["fails"]
                cpus += res["cpu"]
            curve[vmm][conc] = {"rates": rates, "lat": lats, "fails": fails, "n": n, "cpu": cpus}
            rep.log("tiny %-6s C=%-3d N=%d x %d: rate median %.1f/s (min %.1f, max %.1f); start -> "
                    "first output %s; CPU per VMM process (start to exit) %s; failures %d; load %s" % (
                        vmm, conc, n, o.reps, statistics.median(rates), min(rates), max(rates),
                        summary(lats, " ms"), summary(cpus, " ms", "%.1f"), len(fails), loadavg()))
            for f in fails[:5]:
                rep.log("  failure: " + f)
    # VMM set-up phases: C=1 boots with the Debug timeline.
    res = tiny_batch(o, procs, "hearth", 1, o.setup_n, debug=True)
    timelines = [parse_vmm_timeline(r["err"]) for r in res["recs"]]
    timelines = [t for t in timelines if "first guest instruction (boot timer)" in t]
    rep.log("VMM set-up timeline (C=1, --level Debug, n=%d, failures %d)" % (len(timelines),
                                                                              len(res["fails"])))
    rep.data["tiny"] = {"curve": curve, "setup": timelines, "setup_fails": res["fails"],
                        "setup_lat": res["lat"]}


# ----------------------------------------------------------------------------- snapshot --
def make_snapshot(o, procs, rep):
    """Boots the Linux guest once with the vsock echo listener and snapshots it."""
    work = procs.work
    sdir = o.snapshot_dir or work
    snap, mem = os.path.join(sdir, "vm.snap"), os.path.join(sdir, "vm.mem")
    if o.snapshot_dir and os.path.isfile(snap) and os.path.isfile(mem):
        o.snap, o.mem = snap, mem
        rep.data["snapshot"] = {"boot_s": float("nan"), "create_ms": float("nan"),
                                "state_bytes": os.path.getsize(snap),
                                "mem_disk_kib": os.stat(mem).st_blocks // 2, "ready_us": None}
        try:
            with open(os.path.join(sdir, "made.json")) as f:
                rep.data["snapshot"].update(json.load(f))
        except (OSError, ValueError):
            pass
        rep.snapshot_calls = rep.data["snapshot"].get("calls")
        rep.log("snapshot: reusing %s and %s (--snapshot-dir; made %s)" % (
            snap, mem, rep.data["snapshot"].get("made", "by an earlier run")))
        return
    api = os.path.join(work, "base.sock")
    out, err = os.path.join(work, "base.out"), os.path.join(work, "base.err")
    pid = procs.spawn([o.hearth, "--api-sock", api, "--boot-timer", "--id", "base"],
                      stdout=out, stderr=err, name="base")
    wait_api(api, pid, procs)
    args = "%s hearth_agent.checks=vsock_echo:%d,vsock_hold:%d:%d hearth_agent.action=none" % (
        LINUX_ARGS, ECHO_PORT, HOLD_PORT, o.hold_seconds)
    uds = os.path.join(work, "base.v")
    calls = [
        ("PUT", "/boot-source", {"kernel_image_path": o.vmlinux, "initrd_path": o.initrd,
                                 "boot_args": args}),
        ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": o.mem_mib}),
        ("PUT", "/vsock", {"guest_cid": GUEST_CID, "uds_path": uds}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
    ]
    t0 = mono()
    for m, p, b in calls:
        expect_204(api, m, p, b)
    rep.snapshot_calls = calls
    marker = "vsock_echo port=%d listen=ok" % ECHO_PORT
    deadline = mono() + o.linux_timeout
    while True:
        with open(out, errors="replace") as f:
            console = f.read()
        if marker in console:
            break
        procs.reap()
        if pid not in procs.live:
            raise Fail("the snapshot's base VM exited before '%s': %s" % (marker, console[-300:]))
        if mono() > deadline:
            raise Fail("the snapshot's base VM did not print '%s' in %d s" % (marker, o.linux_timeout))
        time.sleep(0.2)
    boot_s = mono() - t0
    e = vsock_echo_once(uds, ECHO_PORT, 120)
    if e:
        raise Fail("the base VM does not echo over vsock: " + e)
    time.sleep(2)  # let the guest's echo thread see the close and exit
    # The kernel unpacks the initramfs in a background worker that runs on after the agent is
    # ready (tens of seconds, interpreted): a snapshot taken now would make every clone redo the
    # rest of it, so "idle" clones would not be idle. Wait until the base VM's CPU use falls.
    settle_s = wait_until_quiet(pid, o.linux_timeout)
    rep.log("snapshot: the base VM settled %.1f s after the echo (CPU below %d%% of a core)" % (
        settle_s, QUIET_CPU_PERCENT))
    expect_204(api, "PATCH", "/vm", {"state": "Paused"})
    t1 = mono()
    expect_204(api, "PUT", "/snapshot/create",
               {"snapshot_type": "Full", "snapshot_path": snap, "mem_file_path": mem})
    create_ms = (mono() - t1) * 1000
    procs.kill(pid)
    procs.wait_gone([pid], 10)
    o.snap, o.mem = snap, mem
    if o.snapshot_dir:
        with open(os.path.join(sdir, "made.json"), "w") as f:
            json.dump({"boot_s": boot_s, "create_ms": create_ms, "calls": calls,
                       "made": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")}, f)
    tl = parse_vmm_timeline(err)
    rep.data["snapshot"] = {"boot_s": boot_s, "create_ms": create_ms,
                            "state_bytes": os.path.getsize(snap),
                            "mem_disk_kib": os.stat(mem).st_blocks // 2,
                            "ready_us": tl.get("first guest instruction (boot timer)")}
    rep.log("snapshot: Linux boot to the echo listener %.1f s, snapshot/create %.0f ms, state %d B, "
            "memory file %d MiB (%d KiB allocated)" % (
                boot_s, create_ms, os.path.getsize(snap), os.path.getsize(mem) >> 20,
                os.stat(mem).st_blocks // 2))


# ------------------------------------------------------------------------------ restores --
class Clone:
    """One restore, as a non-blocking state machine: api -> load -> vsock -> echo -> done."""
    count = 0

    def __init__(self, o, procs, until="answer"):
        Clone.count += 1
        self.until = until
        self.idx = Clone.count
        self.o, self.procs = o, procs
        w = procs.work
        self.api = os.path.join(w, "c%d.sock" % self.idx)
        self.uds = os.path.join(w, "c%d.v" % self.idx)
        self.err = os.path.join(w, "c%d.err" % self.idx)
        self.t = mono()
        self.pid = procs.spawn([o.hearth, "--api-sock", self.api, "--level", "Warning",
                                "--id", "c%d" % self.idx], stdout=None, stderr=self.err, name="clone")
        self.state, self.sock, self.buf, self.error = "api", None, b"", None
        self.t_loaded = self.t_done = self.t_ok = self.cpu_ms = None

    def body(self):
        return {"snapshot_path": self.o.snap,
                "mem_backend": {"backend_type": "File", "backend_path": self.o.mem},
                "resume_vm": True, "vsock_override": {"uds_path": self.uds}}

    def close(self, sel):
        if self.sock is not None:
            try:
                sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sock.close()
            self.sock = None

    def fail(self, sel, what):
        self.close(sel)
        self.state, self.error = "failed", "clone %d (pid %d): %s" % (self.idx, self.pid, what)

    def start_check(self, sel):
        """(Re)connects to the guest's echo port through the clone's vsock socket."""
        self.close(sel)
        self.t_check = mono()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.uds)
            s.sendall(b"CONNECT %d\n" % ECHO_PORT)
        except OSError as e:
            s.close()
            return self.fail(sel, "vsock socket: %s" % e)
        s.setblocking(False)
        self.sock, self.buf, self.state = s, b"", "vsock"
        sel.register(s, selectors.EVENT_READ, self)

    def poll_api(self, sel):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.api)
        except OSError:
            s.close()
            if self.pid not in self.procs.live:
                self.fail(sel, "exited before its API socket answered")
            return
        s.sendall(http_request("PUT", "/snapshot/load", self.body()))
        s.setblocking(False)
        self.sock, self.buf, self.state = s, b"", "load"
        sel.register(s, selectors.EVENT_READ, self)

    def on_readable(self, sel):
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as e:
            return self.fail(sel, "%s: %s" % (self.state, e))
        if not data:
            return self.fail(sel, "%s: connection closed after %r" % (self.state, self.buf[:80]))
        self.buf += data
        if self.state == "load":
            r = http_parse(self.buf)
            if r is None:
                return
            if r[0] != 204:
                return self.fail(sel, "PUT /snapshot/load -> %d %s" % (r[0], r[1].strip()))
            self.t_loaded = mono()
            if self.until == "running":
                self.finish(sel)
            else:
                self.start_check(sel)
        elif self.state == "vsock":
            if not self.buf.endswith(b"\n"):
                return
            if not self.buf.startswith(b"OK "):
                return self.fail(sel, "CONNECT %d -> %r" % (ECHO_PORT, self.buf))
            self.t_ok = mono()
            self.buf, self.state = b"", "echo"
            self.sock.send(b"x")
        elif self.state == "echo":
            if self.buf != b"x":
                return self.fail(sel, "echo returned %r" % self.buf)
            self.finish(sel)  # closing: the guest's echo thread sees EOF and exits

    def finish(self, sel):
        self.t_done = mono()
        self.state = "done"
        self.close(sel)
        self.cpu_ms = cpu_ms(self.pid)


QUIET_CPU_PERCENT = 5


def wait_until_quiet(pid, timeout, window=2.0):
    """Waits until process `pid` uses less than QUIET_CPU_PERCENT of a core over `window` s;
    returns the seconds waited. Raises Fail after `timeout` s."""
    t0 = mono()
    while True:
        a = cpu_ms(pid)
        time.sleep(window)
        b = cpu_ms(pid)
        if a is None or b is None:
            raise Fail("the snapshot's base VM exited while settling")
        percent = (b - a) / (window * 1000) * 100
        if percent < QUIET_CPU_PERCENT:
            return mono() - t0
        if mono() - t0 > timeout:
            raise Fail("the snapshot's base VM kept using %.0f%% of a core for %d s" % (
                percent, timeout))


def cpu_ms(pid):
    """User + system CPU time of a process so far (the vCPU thread's guest time included), ms."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def drive(o, procs, conc, n, keep, existing=None, timeout=120.0, until="answer"):
    """Restores n clones (or re-checks `existing` ones) with at most `conc` in flight.
    Returns (clones that answered, failed clones, seconds from the first start to the last answer)."""
    sel = selectors.DefaultSelector()
    queue = list(existing) if existing is not None else None
    started, active, done, failed = 0, [], [], []
    t0 = mono()
    t_last = t0
    total = len(queue) if queue is not None else n
    while started < total or active:
        while len(active) < conc and started < total:
            if queue is not None:
                c = queue[started]
                c.start_check(sel)
                c.t = c.t_check
            else:
                c = Clone(o, procs, until)
            active.append(c)
            started += 1
        api_waiting = any(c.state == "api" for c in active)
        for key, _ in sel.select(timeout=0.001 if api_waiting else 0.05):
            key.data.on_readable(sel)
        now = mono()
        procs.reap()
        still = []
        for c in active:
            if c.state == "api":
                c.poll_api(sel)
            if c.state not in ("done", "failed") and now - c.t > timeout:
                c.fail(sel, "%s: no progress within %.0f s" % (c.state, timeout))
            if c.state not in ("done", "failed") and c.pid not in procs.live:
                c.fail(sel, "%s: the VMM exited (%s)" % (c.state, exit_code(procs.exited.get(c.pid, 0))))
            if c.state == "done":
                done.append(c)
                t_last = max(t_last, c.t_done)
                if not keep:
                    procs.kill(c.pid)
            elif c.state == "failed":
                failed.append(c)
                if existing is None:
                    procs.kill(c.pid)
            else:
                still.append(c)
        active = still
    sel.close()
    return done, failed, t_last - t0


def cleanup_clones(procs, clones):
    for c in clones:
        procs.kill(c.pid)
    procs.wait_gone([c.pid for c in clones], 30)
    for c in clones:
        for p in (c.api, c.uds, c.err):
            try:
                os.unlink(p)
            except OSError:
                pass


def section_restore(o, procs, rep):
    rep.data["restore"] = {}
    for until, n, concs in (("running", o.running_n, o.running_conc), ("answer", o.restore_n, o.restore_conc)):
        rep.log("## restore: snapshot restores to a %s guest (churn: each clone killed once done)" % (
            "running (PUT /snapshot/load with resume_vm returned 204)" if until == "running" else
            "answering (vsock CONNECT -> OK -> byte echoed)"))
        curve = {}
        for conc in concs:
            rates, lats, loads, oks, cpus, lives, fails = [], [], [], [], [], [], []
            for r in range(o.reps):
                done, failed, secs = drive(o, procs, conc, n, keep=False, until=until)
                cleanup_clones(procs, done + failed)
                lives += [procs.cpu[c.pid] for c in done if c.pid in procs.cpu]
                rates.append(len(done) / secs if done and secs > 0 else 0.0)
                lats += [(c.t_done - c.t) * 1000 for c in done]
                loads += [(c.t_loaded - c.t) * 1000 for c in done]
                oks += [(c.t_ok - c.t_loaded) * 1000 for c in done if c.t_ok]
                cpus += [c.cpu_ms for c in done if c.cpu_ms is not None]
                fails += [c.error for c in failed]
            curve[conc] = {"rates": rates, "lat": lats, "load": loads, "ok": oks, "cpu": cpus,
                           "life": lives, "fails": fails, "n": n}
            rep.log("restore-%s C=%-3d N=%d x %d: rate median %.1f/s (min %.1f, max %.1f); start -> done %s; "
                    "start -> load 204 %s; 204 -> OK %s; CPU per VMM process when done %s, over its life (kill and "
                    "exit included) %s; failures %d; load %s" % (
                        until, conc, n, o.reps, statistics.median(rates), min(rates), max(rates),
                        summary(lats, " ms"), summary(loads, " ms"), summary(oks, " ms"),
                        summary(cpus, " ms", "%.0f"), summary(lives, " ms", "%.1f"), len(fails), loadavg()))
            for f in fails[:5]:
                rep.log("  failure: " + str(f))
        rep.data["restore"][until] = curve


# ------------------------------------------------------------------------------- density --
def section_density(o, procs, rep):
    rep.log("## density: idle %d MiB clones kept alive, every one answering at each step" % o.mem_mib)
    clones, steps, reason = [], [], None
    t_start = mono()
    try:
        for target in o.density_steps:
            if mono() - t_start > o.density_budget:
                reason = "time budget of %d s used up before step %d" % (o.density_budget, target)
                break
            avail = meminfo("MemAvailable")
            if avail < o.min_avail_mib * 1024:
                reason = "MemAvailable %d MiB below the %d MiB floor" % (avail >> 10, o.min_avail_mib)
                break
            t0 = mono()
            done, failed, secs = drive(o, procs, o.density_conc, target - len(clones), keep=True,
                                       until="running")
            clones += done
            restore_s = mono() - t0
            if failed:
                cleanup_clones(procs, failed)
                reason = "restores failed at %d VMs: %s" % (len(clones) + len(failed), failed[0].error)
                rep.log("density: " + reason)
                break
            time.sleep(2)  # idle before measuring
            cpu0 = sum(cpu_ms(c.pid) or 0 for c in clones)
            t_idle = mono()
            busy = cpu_busy_fraction(3)
            clones_cpu = (sum(cpu_ms(c.pid) or 0 for c in clones) - cpu0) / ((mono() - t_idle) * 1000)
            load_idle = loadavg()
            t1 = mono()
            ok, bad, check_s = drive(o, procs, o.check_conc, 0, keep=True, existing=clones,
                                     timeout=o.check_timeout)
            check_s = mono() - t1
            pss = [pss_kib(c.pid) for c in clones]
            pss = [p for p in pss if p is not None]
            threads = 0
            for c in clones:
                try:
                    threads += len(os.listdir("/proc/%d/task" % c.pid))
                except OSError:
                    pass
            step = {"vms": len(clones), "answered": len(ok), "failed": len(bad),
                    "restore_s": restore_s, "check_s": check_s,
                    "pss_total_mib": sum(pss) / 1024, "pss_per_vm_mib": sum(pss) / 1024 / max(1, len(pss)),
                    "avail_mib": meminfo("MemAvailable") >> 10, "load_idle": load_idle,
                    "busy_idle": busy, "clones_cpu": clones_cpu, "threads": threads,
                    "check_lat": [(c.t_done - c.t) * 1000 for c in ok]}
            steps.append(step)
            rep.log("density %4d VMs: restored in %.1f s; all-answer check %.1f s (%d ok, %d failed, "
                    "answer %s); PSS %.1f MiB total, %.2f MiB/VM; MemAvailable %d MiB; idle: host CPU busy "
                    "%.0f%%, the clones' own CPU %.2f cores; load %s; %d VMM threads" % (
                        step["vms"], restore_s, check_s, len(ok), len(bad),
                        summary(step["check_lat"], " ms"), step["pss_total_mib"], step["pss_per_vm_mib"],
                        step["avail_mib"], busy * 100, clones_cpu, load_idle, threads))
            if bad:
                reason = "%d of %d VMs did not answer: %s" % (len(bad), len(clones), bad[0].error)
                break
        else:
            reason = "reached the last step (%d VMs), the configured cap" % o.density_steps[-1]
    finally:
        t0 = mono()
        cleanup_clones(procs, clones)
        rep.log("density: cleaned up %d VMs in %.1f s" % (len(clones), mono() - t0))
    rep.log("density: stopped: " + reason)
    rep.data["density"] = {"steps": steps, "reason": reason}


# --------------------------------------------------------------------------------- linux --
TS_RE = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")


def guest_timestamp(console, text):
    for line in console.splitlines():
        m = TS_RE.match(line.strip("\r"))
        if m and text in m.group(2):
            return float(m.group(1))
    return None


def section_linux(o, procs, rep):
    rep.log("## linux: boot-time breakdown (%d boots)" % o.linux_boots)
    boots = []
    cfg = os.path.join(procs.work, "linux.json")
    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": o.vmlinux, "initrd_path": o.initrd,
                                   "boot_args": LINUX_ARGS + " hearth_agent.action=none"},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": o.mem_mib}}, f)
    rep.linux_config = open(cfg).read()
    for i in range(o.linux_boots):
        out, err = os.path.join(procs.work, "linux%d.out" % i), os.path.join(procs.work, "linux%d.err" % i)
        t0 = mono()
        pid = procs.spawn([o.hearth, "--no-api", "--config-file", cfg, "--boot-timer", "--level", "Debug",
                           "--id", "linux%d" % i], stdout=out, stderr=err, name="linux")
        load0 = loadavg()
        t_init = None
        while pid in procs.live and mono() - t0 < o.linux_timeout:
            time.sleep(0.2)
            procs.reap()
            # On hardware hosts user space runs and the guest idles at a shell: stop it 60 s
            # after the kernel handed over to /init.
            if t_init is None:
                with open(out, errors="replace") as f:
                    if "Run /init as init process" in f.read():
                        t_init = mono()
            elif mono() - t_init > 60:
                break
        if pid in procs.live:
            procs.kill(pid)
            procs.wait_gone([pid], 10)
        wall = mono() - t0
        with open(out, errors="replace") as f:
            console = f.read()
        tl = parse_vmm_timeline(err)
        b = {"wall_s": wall, "exit": exit_code(procs.exited.get(pid, 0)), "load": load0 + " -> " + loadavg(),
             "vmm_us": tl.get("vCPU 0 entering the guest", tl.get("vCPUs configured")), "ready_host_us": tl.get("first guest instruction (boot timer)"),
             "g_version": guest_timestamp(console, "Linux version"),
             "g_ready": guest_timestamp(console, "hearth-agent: ready"),
             "g_run_init": guest_timestamp(console, "Run /init as init process"),
             "g_free": guest_timestamp(console, "Freeing unused kernel image"),
             "g_init_died": guest_timestamp(console, "Attempted to kill init")}
        if b["vmm_us"] is None or b["ready_host_us"] is None or b["g_ready"] is None:
            rep.log("linux boot %d: incomplete (exit %s): %s" % (i, b["exit"], console[-400:]))
            b["ok"] = False
        else:
            b["ok"] = True
            b["kernel_s"] = (b["ready_host_us"] - b["vmm_us"]) / 1e6
            b["init_s"] = (b["g_run_init"] - b["g_ready"]) if b["g_run_init"] is not None else None
            b["user_s"] = ((b["g_init_died"] - b["g_run_init"])
                           if b["g_init_died"] is not None and b["g_run_init"] is not None else None)
            rep.log("linux boot %d: VMM set-up %.2f ms | kernel (first instruction -> agent ready) %.2f s "
                    "(guest clock at ready %.2f s) | init (ready -> Run /init) %s s | /init's first "
                    "system call %s s later | exit %s | load %s" % (
                        i, b["vmm_us"] / 1000, b["kernel_s"], b["g_ready"],
                        "%.2f" % b["init_s"] if b["init_s"] is not None else "n/a",
                        "%.2f" % b["user_s"] if b["user_s"] is not None else "n/a", b["exit"], b["load"]))
        boots.append(b)
    rep.data["linux"] = boots


# ----------------------------------------------------------------------------------- SVG --
def svg_histogram(x0, y0, w, h, title, xs, unit, bins=30):
    parts = ['<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>' % (x0, y0 - 8, esc(title))]
    if not xs:
        parts.append('<text x="%d" y="%d" font-size="12">no samples</text>' % (x0, y0 + 20))
        return parts
    lo, hi = min(xs), pct(xs, 0.99)
    if hi <= lo:
        hi = lo + 1
    width = (hi - lo) / bins
    counts = [0] * bins
    over = 0
    for x in xs:
        if x > hi:
            over += 1
            continue
        counts[min(bins - 1, int((x - lo) / width))] += 1
    top = max(counts) or 1
    parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>' % (x0, y0, w, h))
    bw = w / bins
    for i, c in enumerate(counts):
        bh = h * c / top
        parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3b7dd8"/>' % (
            x0 + i * bw + 0.5, y0 + h - bh, bw - 1, bh))
    med = statistics.median(xs)
    mx = x0 + w * min(1.0, (med - lo) / (hi - lo))
    parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d33" stroke-dasharray="4,3"/>' % (
        mx, y0, mx, y0 + h))
    for frac in (0, 0.25, 0.5, 0.75, 1):
        v = lo + frac * (hi - lo)
        parts.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%.4g</text>' % (
            x0 + frac * w, y0 + h + 13, v))
    parts.append('<text x="%d" y="%d" font-size="11" text-anchor="middle">%s</text>' % (
        x0 + w / 2, y0 + h + 27, esc(unit)))
    parts.append('<text x="%d" y="%d" font-size="11" text-anchor="end">n=%d, median %.3g (red), max count %d%s'
                 '</text>' % (x0 + w - 4, y0 + 14, len(xs), med, top,
                              ", %d above p99 not drawn" % over if over else ""))
    return parts


def svg_stacked(x0, y0, w, title, rows, names, colors):
    """rows: [(label, [segment seconds...])]: one horizontal stacked bar per row."""
    parts = ['<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>' % (x0, y0 - 8, esc(title))]
    total = max([sum(v) for _, v in rows] + [1e-9])
    bar_h, label_w = 18, 70
    for i, (label, segs) in enumerate(rows):
        y = y0 + i * (bar_h + 6)
        parts.append('<text x="%d" y="%d" font-size="11">%s</text>' % (x0, y + 13, esc(label)))
        x = x0 + label_w
        for s, c in zip(segs, colors):
            sw = (w - label_w - 60) * s / total
            parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>' % (x, y, max(sw, 0.5), bar_h, c))
            x += sw
        parts.append('<text x="%.1f" y="%d" font-size="11">%.1f s</text>' % (x + 4, y + 13, sum(segs)))
    y = y0 + len(rows) * (bar_h + 6) + 10
    for j, (n, c) in enumerate(zip(names, colors)):
        parts.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (x0 + label_w + j * 230, y, c))
        parts.append('<text x="%d" y="%d" font-size="11">%s</text>' % (x0 + label_w + j * 230 + 16, y + 10, esc(n)))
    return parts, y + 20


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(path, data):
    W = 760
    parts, y = [], 40
    tiny = data.get("tiny")
    if tiny:
        setup = [t["first guest instruction (boot timer)"] / 1000 for t in tiny["setup"]]
        parts += svg_histogram(40, y, W - 80, 150,
                               "VMM set-up: hearth process start -> first guest instruction (tiny guest, C=1)",
                               setup, "ms (Hearth's boot timer, --boot-timer)")
        y += 230
        best = max(tiny["curve"]["hearth"].items(), key=lambda kv: statistics.median(kv[1]["rates"]))
        parts += svg_histogram(40, y, W - 80, 150,
                               "Tiny guest: launch -> first console byte at C=%d (best rate)" % best[0],
                               best[1]["lat"], "ms (benchmark clock)")
        y += 230
    for until, what in (("running", "running (load 204)"), ("answer", "answers over vsock")):
        curve = data.get("restore", {}).get(until)
        if not curve:
            continue
        best = max(curve.items(), key=lambda kv: statistics.median(kv[1]["rates"]))
        parts += svg_histogram(40, y, W - 80, 150,
                               "Restore: hearth start -> clone %s, C=%d (best rate)" % (what, best[0]),
                               best[1]["lat"], "ms")
        y += 230
    linux = [b for b in data.get("linux", []) if b.get("ok")]
    if linux:
        rows = [("boot %d" % i, [b["vmm_us"] / 1e6, b["kernel_s"], b["init_s"] or 0.0])
                for i, b in enumerate(linux)]
        p, y = svg_stacked(40, y, W - 40, "Linux boot phases (VMM set-up is ~ms: a sliver at this scale)", rows,
                           ["VMM set-up", "kernel: first instr. -> agent ready", "init: ready -> Run /init"],
                           ["#d33", "#3b7dd8", "#2a9d4b"])
        parts += p
        y += 20
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (W, y),
           '<rect width="100%" height="100%" fill="white"/>'] + parts + ["</svg>"]
    with open(path, "w") as f:
        f.write("\n".join(svg) + "\n")


# -------------------------------------------------------------------------------- report --
class Report:
    def __init__(self):
        self.lines, self.data = [], {}
        self.snapshot_calls, self.linux_config = None, None

    def log(self, text):
        print(text, flush=True)
        self.lines.append(text)


def machine_description(o):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    kind = subprocess.run([o.hearth, "--print-host-kind"], capture_output=True, text=True).stdout.strip()
    qemu = ""
    if o.qemu:
        qemu = subprocess.run([o.qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return [
        "- CPU: %s, %d CPUs online (`nproc`), shared with other sessions' builds and tests" % (cpu, os.cpu_count()),
        "- memory: %.1f GiB (MemTotal), no swap" % (meminfo("MemTotal") / 1048576),
        "- kernel: %s (`uname -r`), %s" % (os.uname().release, "Debian 12"),
        "- KVM: `hearth --print-host-kind` = %s; /sys/module/kvm_pvm %s: nested virtualization without "
        "VMX, shadow paging, guest kernel (CPL 0) code interpreted (~1700x slower), guest user space "
        "cannot make system calls" % (kind, "present" if os.path.exists("/sys/module/kvm_pvm") else "absent"),
        "- hearth: %s, %s" % (o.hearth, subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                                     capture_output=True, text=True).stdout.strip()),
        "- QEMU: %s" % (qemu or "not run"),
    ]


def fmt_rates(rates):
    return "%.1f (%.1f..%.1f)" % (statistics.median(rates), min(rates), max(rates))


def write_report(o, rep, started, loads):
    d = rep.data
    ncpu = os.cpu_count()
    L = ["# Hearth at scale: creation rate, density, boot-time breakdown", "",
         "Measured %s UTC by `benchmarks/scale/scale_bench.py`. Host load average (1/5/15 min) at the "
         "start: %s; at the end: %s. The host was shared with other sessions (builds, fuzzing, tests) "
         "during the whole run, so absolute figures are noisy; each row gives the median and the "
         "spread over repetitions, and the load at that moment is in the log below." % (
             started, loads[0], loadavg()), "", "## Machine", ""]
    L += machine_description(o)
    L += ["", "## Commands", "", "```sh", o.command_line, "```", "",
          "Hearth processes, as the benchmark starts them:", "",
          "- tiny guest: `%s` with `%s`: `%s`" % (
              " ".join(tiny_argv(o, "hearth", "", 0, False)).replace(" --id t0", " --id tN"),
              os.path.basename(o.tiny_config), open(o.tiny_config).read().strip()),
          ]
    if o.qemu:
        L.append("- QEMU peer: `%s`" % " ".join(tiny_argv(o, "qemu", "", 0, False)))
    if rep.snapshot_calls:
        L.append("- snapshot base: `hearth --api-sock base.sock --boot-timer`, then " + "; ".join(
            "`%s %s %s`" % (m, p, json.dumps(b)) for m, p, b in rep.snapshot_calls) +
            "; wait for `vsock_echo port=%d listen=ok`, one echo, wait until the base VM uses < %d %% of a core (the initramfs unpack worker done), `PATCH /vm {\"state\":\"Paused\"}`, "
            "`PUT /snapshot/create {\"snapshot_type\":\"Full\",...}`" % (ECHO_PORT, QUIET_CPU_PERCENT))
        L.append("- clone: `hearth --api-sock cN.sock --level Warning`, `PUT /snapshot/load "
                 "{\"snapshot_path\":...,\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":...},"
                 "\"resume_vm\":true,\"vsock_override\":{\"uds_path\":\"cN.v\"}}`, then on `cN.v`: "
                 "`CONNECT %d\\n` -> `OK ...\\n`, send `x`, read `x` back" % ECHO_PORT)
    if rep.linux_config:
        L.append("- Linux breakdown boots: `hearth --no-api --config-file linux.json --boot-timer --level Debug` "
                 "with `%s`" % rep.linux_config.strip())
    tiny = d.get("tiny")
    if tiny:
        L += ["", "## Creation rate: tiny guest, to the first guest instruction", "",
              "Whole VMM processes (fork/exec, dynamic linking, KVM VM set-up, guest entry) started with "
              "at most C launches in flight; a launch is complete when the first byte of the guest's "
              "console arrives (the tiny `hello` guest's first instructions write the boot-timer port "
              "and then print). Rate = launches / (first start -> last first byte), N per repetition, "
              "%d repetitions: median (min..max). The guest then powers off by itself, so each VM's "
              "teardown overlaps later launches (churn, as on a serverless host)." % o.reps, "",
              "| C | Hearth VMs/s | per core | Hearth start -> first output p50 / p90 | Hearth CPU per VM | "
              "QEMU VMs/s | QEMU CPU per VM | Hearth/QEMU rate |",
              "|---|---|---|---|---|---|---|---|"]
        hc = tiny["curve"]["hearth"]
        qc = tiny["curve"].get("qemu", {})
        for c in o.tiny_conc:
            h = hc[c]
            q = qc.get(c)
            hr = statistics.median(h["rates"])
            qr = statistics.median(q["rates"]) if q else None
            cpu = lambda r: "%.1f ms" % statistics.median(r["cpu"]) if r and r.get("cpu") else "-"
            L.append("| %d | %s%s | %.1f | %.1f / %.1f ms | %s | %s | %s | %s |" % (
                c, fmt_rates(h["rates"]), " (%d failed)" % len(h["fails"]) if h["fails"] else "", hr / ncpu,
                statistics.median(h["lat"]) if h["lat"] else float("nan"), pct(h["lat"], 0.9), cpu(h),
                (fmt_rates(q["rates"]) + (" (%d failed)" % len(q["fails"]) if q["fails"] else "")) if q else "-",
                cpu(q),
                "%.1f" % (hr / qr) if qr else "-"))
        bc, bh = max(hc.items(), key=lambda kv: statistics.median(kv[1]["rates"]))
        L += ["", "Best: **%.1f tiny VMs/s at C=%d = %.1f per host core per second** (Firecracker publishes 5 "
              "boots per host core per second)." % (statistics.median(bh["rates"]), bc,
                                                    statistics.median(bh["rates"]) / ncpu)]
        if qc:
            qb, qh = max(qc.items(), key=lambda kv: statistics.median(kv[1]["rates"]))
            L.append("QEMU microvm's best: %.1f VMs/s at C=%d; best against best: %.1fx." % (
                statistics.median(qh["rates"]), qb, statistics.median(bh["rates"]) / statistics.median(qh["rates"])))
    snap = d.get("snapshot")
    restore = d.get("restore")
    if restore:
        boot = "%.0f s to the echo listener on this host%s" % (
            snap["boot_s"], ", by an earlier run at %s with the same binary" % snap["made"] if "made" in snap else "") \
            if snap["boot_s"] == snap["boot_s"] else "reused from an earlier run"
        L += ["", "## Creation rate: snapshot restores", "",
              "The snapshot: the bundled Linux guest (%d MiB, 1 vCPU) booted once (%s), paused and "
              "snapshotted (Full; state file %d bytes, memory file %d MiB of which %d MiB allocated). "
              "Each restore starts a fresh `hearth --api-sock`, waits for the socket and sends "
              "`PUT /snapshot/load` (File backend, resume_vm, vsock_override). *Running*: done when that "
              "call returned 204 (memory mapped, devices and KVM state restored, vCPU resumed). "
              "*Answering*: then a host client connects to the clone's vsock socket, `CONNECT %d` -> "
              "`OK`, and one byte comes back from the guest's in-kernel echo listener. Each clone is killed "
              "as soon as it is done (its teardown overlaps the next restores). CPU = user + system time "
              "of the clone's VMM process when done (its vCPU thread's guest time included; "
              "100 Hz ticks) and over its whole life, exit after SIGKILL included (`wait4` rusage). %d repetitions per row." % (
                  o.mem_mib, boot, snap["state_bytes"], os.path.getsize(o.mem) >> 20,
                  snap["mem_disk_kib"] >> 10, ECHO_PORT, o.reps), ""]
        for until, title in (("running", "to a running guest"), ("answer", "to an answering guest")):
            curve = restore.get(until)
            if not curve:
                continue
            L += ["**Restores %s** (N=%d per repetition):" % (title, list(curve.values())[0]["n"]), "",
                  "| C | restores/s | per core | start -> done p50 / p90 | start -> load 204 p50 | "
                  "204 -> OK p50 | CPU per clone p50: when done / whole life | failed |",
                  "|---|---|---|---|---|---|---|---|"]
            for c, r in curve.items():
                med = lambda xs: statistics.median(xs) if xs else float("nan")
                L.append("| %d | %s | %.1f | %.1f / %.1f ms | %.1f ms | %s | %s | %d |" % (
                    c, fmt_rates(r["rates"]), med(r["rates"]) / ncpu, med(r["lat"]), pct(r["lat"], 0.9),
                    med(r["load"]), "%.0f ms" % med(r["ok"]) if r["ok"] else "-",
                    "%.0f / %.1f ms" % (med(r["cpu"]), med(r.get("life", []))) if r["cpu"] else "-",
                    len(r["fails"])))
            bc, br = max(curve.items(), key=lambda kv: statistics.median(kv[1]["rates"]))
            best = statistics.median(br["rates"])
            L += ["", "Best %s: **%.1f restores/s at C=%d = %.1f per host core per second** (aim: 100 per "
                  "core per second: %s)." % (title, best, bc, best / ncpu,
                                             "met" if best / ncpu >= 100 else "missed"), ""]
    dens = d.get("density")
    if dens:
        L += ["", "## Density: idle clones of one snapshot, all answering", "",
              "Clones of the same snapshot restored %d at a time (to running) and kept running (idle: the "
              "guest waits in the agent's `vsock_hold`, the echo listener thread sleeps in accept). At "
              "each step: 2 s idle, then over 3 s the host's CPU busy fraction (all sessions) and the "
              "CPU the clones' VMM processes used (cores; their vCPU threads' guest time included), "
              "then every clone is "
              "checked again (new vsock connection, `OK`, one byte echoed; %d checks in flight), then "
              "PSS of every VMM process (`/proc/PID/smaps_rollup`, which includes the guest memory "
              "mapping: private copied pages plus a share of the snapshot file's page cache). A clone "
              "that does not answer within the VMM's vsock connect timeout (30 s: the device closes the "
              "host connection when the guest has not answered the request) or --check-timeout fails "
              "the step." % (o.density_conc, o.check_conc), "",
              "| VMs | restore step | all-answer check | answered | answer p50 / p90 | PSS total | PSS/VM | "
              "MemAvailable | idle: host CPU busy / clones' CPU | load | VMM threads |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in dens["steps"]:
            L.append("| %d | %.1f s | %.1f s | %d/%d | %.1f / %.1f ms | %.0f MiB | %.2f MiB | %d MiB | %.0f%% / %.2f cores | %s | %d |" % (
                s["vms"], s["restore_s"], s["check_s"], s["answered"], s["vms"],
                statistics.median(s["check_lat"]) if s["check_lat"] else float("nan"), pct(s["check_lat"], 0.9),
                s["pss_total_mib"], s["pss_per_vm_mib"], s["avail_mib"], s["busy_idle"] * 100, s["clones_cpu"],
                s["load_idle"],
                s["threads"]))
        L += ["", "Stopped: %s." % dens["reason"]]
    tiny_setup = tiny["setup"] if tiny else []
    linux = d.get("linux")
    if tiny_setup or linux:
        L += ["", "## Boot-time breakdown", "", "![boot-time histograms](%s)" % os.path.basename(o.svg), ""]
    if tiny_setup:
        names = [k for k in tiny_setup[0].keys()]
        L += ["VMM set-up, tiny guest, C=1, `--level Debug` start-up timeline (µs since the VMM "
              "process started, Hearth's clock; n=%d):" % len(tiny_setup), "",
              "| milestone | median | p10 | p90 | max |", "|---|---|---|---|---|"]
        for k in names:
            xs = [t[k] for t in tiny_setup if k in t]
            L.append("| %s | %d µs | %d | %d | %d |" % (k, statistics.median(xs), pct(xs, 0.1), pct(xs, 0.9), max(xs)))
    if linux:
        ok = [b for b in linux if b.get("ok")]
        L += ["", "Linux guest (bundled kernel, initramfs, 1 vCPU, %d MiB, `hearth_agent.action=none`), "
              "%d boots (%d complete). VMM set-up = process start -> `vCPU 0 entering the guest` (Debug timeline); "
              "kernel = from there to the agent's boot-timer write at `late_initcall_sync` "
              "(`hearth-agent: ready`, Hearth's `Guest-boot-time`); init = guest console timestamps from "
              "`hearth-agent: ready` to `Run /init as init process`. On this host /init's first system "
              "call kills it (kvm_pvm), which ends the boot with a panic; the time from `Run /init` to "
              "that panic is the last column." % (o.mem_mib, len(linux), len(ok)), "",
              "| boot | VMM set-up | kernel | guest clock at ready | init | Run /init -> first syscall | "
              "wall | load |", "|---|---|---|---|---|---|---|---|"]
        for i, b in enumerate(linux):
            if not b.get("ok"):
                L.append("| %d | incomplete (exit %s) | | | | | %.1f s | %s |" % (i, b["exit"], b["wall_s"], b["load"]))
                continue
            L.append("| %d | %.2f ms | %.2f s | %.2f s | %s | %s | %.1f s | %s |" % (
                i, b["vmm_us"] / 1000, b["kernel_s"], b["g_ready"],
                "%.2f s" % b["init_s"] if b["init_s"] is not None else "n/a",
                "%.2f s" % b["user_s"] if b["user_s"] is not None else "n/a", b["wall_s"], b["load"]))
        if ok:
            L += ["", "Median over the complete boots: VMM set-up %.2f ms, kernel %.2f s (min %.2f, max %.2f), "
                  "init %s." % (statistics.median([b["vmm_us"] / 1000 for b in ok]),
                                statistics.median([b["kernel_s"] for b in ok]),
                                min(b["kernel_s"] for b in ok), max(b["kernel_s"] for b in ok),
                                "%.2f s" % statistics.median([b["init_s"] for b in ok if b["init_s"] is not None])
                                if any(b["init_s"] is not None for b in ok) else "n/a")]
    L += ["", "## Log", "", "```"] + rep.lines + ["```", ""]
    with open(o.report, "w") as f:
        f.write("\n".join(L))


# ---------------------------------------------------------------------------------- main --
class Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write("%s: %s (see --help)\n" % (PROG, message))
        sys.exit(2)


def int_list(text):
    try:
        xs = [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a list of integers" % text)
    if not xs or any(x <= 0 for x in xs):
        raise argparse.ArgumentTypeError("'%s' must list positive integers" % text)
    return xs


def positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not an integer" % text)
    if v <= 0:
        raise argparse.ArgumentTypeError("'%s' must be positive" % text)
    return v


def parse_args(argv):
    today = datetime.datetime.utcnow().strftime("%Y-%m-%d")
    p = Parser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    p.add_argument("--guest-dir", default=None, help="default BUILD_DIR/guest")
    p.add_argument("--sections", default="tiny restore density linux")
    p.add_argument("--reps", type=positive, default=3, help="repetitions per rate point")
    p.add_argument("--tiny-n", type=positive, default=100, help="tiny VMs per repetition")
    p.add_argument("--qemu-n", type=positive, default=30, help="QEMU VMs per repetition")
    p.add_argument("--tiny-conc", type=int_list, default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--setup-n", type=positive, default=100, help="C=1 tiny boots for the set-up breakdown")
    p.add_argument("--no-qemu", action="store_true")
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--running-n", type=positive, default=100,
                   help="restores to a running guest per repetition")
    p.add_argument("--running-conc", type=int_list, default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--restore-n", type=positive, default=20,
                   help="restores to an answering guest per repetition")
    p.add_argument("--restore-conc", type=int_list, default=[1, 2, 4, 8])
    p.add_argument("--mem-mib", type=positive, default=128)
    p.add_argument("--density-steps", type=int_list, default=[10, 25, 50, 100, 200, 400])
    p.add_argument("--density-conc", type=positive, default=8, help="restores in flight while ramping")
    p.add_argument("--check-conc", type=positive, default=2,
                   help="answer checks in flight at each density step")
    p.add_argument("--density-budget", type=positive, default=1200, help="seconds for the ramp")
    p.add_argument("--min-avail-mib", type=positive, default=6144,
                   help="stop the ramp when MemAvailable is below this")
    p.add_argument("--check-timeout", type=positive, default=300)
    p.add_argument("--hold-seconds", type=positive, default=86400)
    p.add_argument("--snapshot-dir", default=None,
                   help="keep the snapshot here, and reuse one an earlier run left there")
    p.add_argument("--linux-boots", type=positive, default=3)
    p.add_argument("--linux-timeout", type=positive, default=600)
    p.add_argument("--report", default=os.path.join(REPO, "benchmarks", "results", "scale-%s.md" % today))
    p.add_argument("--svg", default=None, help="default: REPORT with -boot.svg")
    o = p.parse_args(argv)
    o.sections = o.sections.split()
    bad = [s for s in o.sections if s not in ("tiny", "restore", "density", "linux")]
    if bad or not o.sections:
        p.error("--sections: unknown section '%s' (tiny, restore, density, linux)" % (bad[0] if bad else ""))
    if o.density_steps != sorted(o.density_steps):
        p.error("--density-steps must increase")
    o.build_dir = os.path.abspath(o.build_dir)
    o.guest_dir = os.path.abspath(o.guest_dir or os.path.join(o.build_dir, "guest"))
    o.hearth = os.path.join(o.build_dir, "src", "hearth")
    o.tiny_kernel = os.path.join(o.build_dir, "tests", "guests", "hello.elf")
    o.vmlinux = os.path.join(o.guest_dir, "vmlinux")
    o.initrd = os.path.join(o.guest_dir, "initramfs.cpio")
    o.report = os.path.abspath(o.report)
    if o.snapshot_dir:
        o.snapshot_dir = os.path.abspath(o.snapshot_dir)
        if not os.path.isdir(o.snapshot_dir):
            p.error("--snapshot-dir: '%s' is not a directory" % o.snapshot_dir)
    o.svg = os.path.abspath(o.svg or re.sub(r"\.md$", "", o.report) + "-boot.svg")
    if o.no_qemu:
        o.qemu = None
    elif o.qemu and "tiny" in o.sections:
        q = shutil.which(o.qemu)
        if not q:
            p.error("--qemu: '%s' not found (give --no-qemu to skip the peer)" % o.qemu)
        o.qemu = q
    o.command_line = os.environ.get("SCALE_BENCH_COMMAND") or " ".join(
        shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + argv)
    return o


def check_inputs(o):
    if not os.access(o.hearth, os.X_OK):
        raise Fail("%s missing: build first (scripts/build.sh)" % o.hearth)
    if "tiny" in o.sections and not os.path.isfile(o.tiny_kernel):
        raise Fail("%s missing: build first" % o.tiny_kernel)
    if set(o.sections) & {"restore", "density", "linux"}:
        for f in (o.vmlinux, o.initrd):
            if not os.path.isfile(f):
                raise Fail("%s missing: run resources/build-guest.sh" % f)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise Fail("/dev/kvm is not accessible")
    os.makedirs(os.path.dirname(o.report), exist_ok=True)


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    o = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    work = tempfile.mkdtemp(prefix="hearth-scale-")
    procs = Procs(work)
    rep = Report()
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    loads = [loadavg()]
    status = 0
    try:
        check_inputs(o)
        o.tiny_config = os.path.join(work, "tiny.json")
        with open(o.tiny_config, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": o.tiny_kernel, "boot_args": "console=ttyS0"},
                       "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}, f)
        rep.log("scale_bench: %s; load %s; work dir %s" % (o.command_line, loads[0], work))
        if "tiny" in o.sections:
            section_tiny(o, procs, rep)
        if set(o.sections) & {"restore", "density"}:
            make_snapshot(o, procs, rep)
        if "restore" in o.sections:
            section_restore(o, procs, rep)
        if "density" in o.sections:
            section_density(o, procs, rep)
        if "linux" in o.sections:
            section_linux(o, procs, rep)
        write_svg(o.svg, rep.data)
        write_report(o, rep, started, loads)
        print("report: %s\nsvg: %s" % (o.report, o.svg))
    except Fail as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        status = 1
    except KeyboardInterrupt as e:
        sys.stderr.write("%s: interrupted (%s); cleaning up\n" % (PROG, e))
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.kill_all()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
