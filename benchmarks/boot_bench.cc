// hearth_boot_bench: times whole VMM processes, Hearth against QEMU microvm in the same run.
//
// Every run forks and execs one VMM with its stdout (the guest's serial console) and stderr on
// pipes and stdin on a pipe the benchmark keeps open (an idle terminal), and records on
// CLOCK_MONOTONIC:
//   start   just before fork()
//   first   the first byte of guest output read from the VMM's stdout
//   marker  the read that completed the first occurrence of the mode's marker string
//   exit    the VMM's pidfd becoming readable (the process has exited), then waitpid
// A run that times out, exits with an unexpected status, or never prints the marker counts as a
// failure and is listed; statistics cover the successful runs only.
//
// Modes:
//   floor   tiny PVH guest (hello.elf): start -> first output, start -> exit
//   linux   the bundled Linux guest: start -> "hearth-agent: ready", start -> exit
//   memory  idle tiny guest (echo.elf, waits for serial input): process RSS minus guest RAM RSS
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "boot/layout.h"
#include "vmm/host_kind.h"

#ifndef HEARTH_BINARY
#define HEARTH_BINARY "hearth"
#endif
#ifndef HEARTH_BUILD_DIR
#define HEARTH_BUILD_DIR "build"
#endif

namespace {

// ------------------------------------------------------------------------------- options --

struct Options {
  std::string mode;
  int runs = -1;  // -1: the mode's default.
  int timeout_s = -1;
  std::string hearth = HEARTH_BINARY;
  std::string qemu = "qemu-system-x86_64";
  std::string build_dir = HEARTH_BUILD_DIR;
  std::string guest_dir;  // Default: <build>/guest.
  std::string qemu_machine =
      "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on,acpi=off";
  std::string qemu_cpu = "host,-arch-capabilities";
  int vcpus = 1;
  int mem_mib = -1;  // Default: 128 (floor, memory), 256 (linux).
  std::string boot_args =
      "console=ttyS0 reboot=k panic=1 pci=off nomodule i8042.noaux i8042.nomux i8042.nopnp "
      "i8042.dumbkbd hearth_agent.action=poweroff";
  int warmup = -1;  // -1: the mode's default.
  bool verbose = false;
};

constexpr const char* kUsage =
    "usage: hearth_boot_bench MODE [options]\n"
    "  MODE: floor | linux | memory | host\n"
    "  --runs N            runs per VMM (default: floor 20, linux 5, memory 5)\n"
    "  --timeout S         per-run timeout in seconds (default: floor/memory 10, linux 300)\n"
    "  --hearth PATH       Hearth binary (default " HEARTH_BINARY ")\n"
    "  --qemu PATH         QEMU binary (default qemu-system-x86_64)\n"
    "  --build-dir DIR     where tests/guests/*.elf live (default " HEARTH_BUILD_DIR ")\n"
    "  --guest-dir DIR     bundled Linux guest (default <build-dir>/guest; QEMU boots\n"
    "                      DIR/qemu/vmlinux, the int3-skip variant)\n"
    "  --qemu-machine M    -M value for QEMU\n"
    "  --qemu-cpu C        -cpu value for QEMU\n"
    "  --vcpus N           vCPUs for both VMMs (default 1)\n"
    "  --mem-mib N         guest memory for both VMMs\n"
    "  --boot-args S       Linux command line for both VMMs (linux mode)\n"
    "  --warmup N          uncounted runs per VMM before measuring (default: floor 1,\n"
    "                      linux 0)\n"
    "  --verbose           print every run\n";

bool ParseInt(const char* s, int* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

std::optional<Options> ParseOptions(int argc, char** argv) {
  if (argc < 2) return std::nullopt;
  Options o;
  o.mode = argv[1];
  if (o.mode != "floor" && o.mode != "linux" && o.mode != "memory" && o.mode != "host") {
    std::fprintf(stderr, "unknown mode %s\n", o.mode.c_str());
    return std::nullopt;
  }
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto int_value = [&](int* out) {
      const char* v = value();
      if (!ParseInt(v, out)) {
        std::fprintf(stderr, "%s: not a number: %s\n", a.c_str(), v);
        std::exit(2);
      }
    };
    if (a == "--runs") int_value(&o.runs);
    else if (a == "--timeout") int_value(&o.timeout_s);
    else if (a == "--hearth") o.hearth = value();
    else if (a == "--qemu") o.qemu = value();
    else if (a == "--build-dir") o.build_dir = value();
    else if (a == "--guest-dir") o.guest_dir = value();
    else if (a == "--qemu-machine") o.qemu_machine = value();
    else if (a == "--qemu-cpu") o.qemu_cpu = value();
    else if (a == "--vcpus") int_value(&o.vcpus);
    else if (a == "--mem-mib") int_value(&o.mem_mib);
    else if (a == "--boot-args") o.boot_args = value();
    else if (a == "--warmup") int_value(&o.warmup);
    else if (a == "--verbose") o.verbose = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return std::nullopt;
    }
  }
  if (o.guest_dir.empty()) o.guest_dir = o.build_dir + "/guest";
  return o;
}

// ---------------------------------------------------------------------------- processes --

double NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct RunSpec {
  std::vector<std::string> argv;
  std::string marker;         // Must appear on stdout for the run to count.
  std::vector<int> ok_exits;  // Accepted exit statuses; empty: the run is stopped by us.
  double timeout_ms = 10000;
  // Memory mode: called with the pid once `settle_ms` have passed since start (the process is
  // then killed). Its result string is stored in RunResult::probe.
  double settle_ms = -1;
  std::string (*probe)(pid_t pid, void* ctx) = nullptr;
  void* probe_ctx = nullptr;
};

struct RunResult {
  bool ok = false;
  std::string failure;  // Why it is not ok.
  double first_ms = -1;   // start -> first stdout byte
  double marker_ms = -1;  // start -> marker seen
  double exit_ms = -1;    // start -> process exit
  int exit_status = -1;   // WEXITSTATUS, or 128+signal
  std::string out;        // stdout (capped)
  std::string err;        // stderr (capped)
  std::string probe;
};

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Reads what is available; returns false on EOF or error.
bool Drain(int fd, std::string* into, size_t cap) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n > 0) {
    if (into->size() < cap) into->append(buf, static_cast<size_t>(n));
    return true;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  return false;
}

RunResult Run(const RunSpec& spec) {
  RunResult r;
  constexpr size_t kCap = 1 << 20;
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    r.failure = std::string("pipe2: ") + std::strerror(errno);
    return r;
  }
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  const double t0 = NowMs();
  pid_t pid = ::fork();
  if (pid < 0) {
    r.failure = std::string("fork: ") + std::strerror(errno);
    return r;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // Also in the parent, so a kill cannot race the child's setpgid.
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  int in_w = in_pipe[1];  // Held open: the guest's serial input stays an idle terminal.
  int out_r = out_pipe[0], err_r = err_pipe[0];
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    r.failure = std::string("pidfd_open: ") + std::strerror(errno);
    return r;
  }
  ::fcntl(out_r, F_SETFL, O_NONBLOCK);
  ::fcntl(err_r, F_SETFL, O_NONBLOCK);

  bool exited = false, timed_out = false, probed = false;
  while (!exited) {
    double now = NowMs();
    double deadline = t0 + spec.timeout_ms;
    if (spec.probe && !probed) deadline = std::min(deadline, t0 + spec.settle_ms);
    if (now >= deadline) {
      if (spec.probe && !probed && now < t0 + spec.timeout_ms) {
        r.probe = spec.probe(pid, spec.probe_ctx);
        probed = true;
        ::kill(-pid, SIGKILL);
        continue;
      }
      timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd fds[3] = {{out_r, POLLIN, 0}, {err_r, POLLIN, 0}, {pidfd, POLLIN, 0}};
    int wait_ms = static_cast<int>(std::ceil(deadline - now));
    int n = ::poll(fds, 3, wait_ms);
    double t = NowMs();
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (out_r >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      size_t before = r.out.size();
      if (!Drain(out_r, &r.out, kCap)) CloseFd(&out_r);
      if (r.out.size() > before) {
        if (r.first_ms < 0) r.first_ms = t - t0;
        if (r.marker_ms < 0 && !spec.marker.empty()) {
          size_t from = before >= spec.marker.size() ? before - spec.marker.size() + 1 : 0;
          if (r.out.find(spec.marker, from) != std::string::npos) r.marker_ms = t - t0;
        }
      }
    }
    if (err_r >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!Drain(err_r, &r.err, kCap)) CloseFd(&err_r);
    }
    if (fds[2].revents & POLLIN) {
      r.exit_ms = t - t0;
      exited = true;
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!timed_out && !probed && r.exit_ms < 0) r.exit_ms = NowMs() - t0;
  // Collect what the process wrote just before exiting.
  for (int fd : {out_r, err_r}) {
    if (fd < 0) continue;
    std::string* into = fd == out_r ? &r.out : &r.err;
    size_t before = into->size();
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) break;
      if (!Drain(fd, into, kCap)) break;
    }
    if (fd == out_r && r.out.size() > before) {
      // Output that arrived only after exit: timestamp it at exit.
      if (r.first_ms < 0) r.first_ms = r.exit_ms;
      if (r.marker_ms < 0 && !spec.marker.empty() && r.out.find(spec.marker) != std::string::npos)
        r.marker_ms = r.exit_ms;
    }
  }
  CloseFd(&out_r);
  CloseFd(&err_r);
  CloseFd(&in_w);
  CloseFd(&pidfd);
  r.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  if (timed_out) {
    r.failure = "timeout after " + std::to_string(static_cast<int>(spec.timeout_ms / 1000)) + " s";
  } else if (!spec.marker.empty() && r.marker_ms < 0) {
    r.failure = "marker '" + spec.marker + "' not seen";
  } else if (spec.probe && !probed) {
    r.failure = "exited (status " + std::to_string(r.exit_status) + ") before the measurement";
  } else if (!probed && std::find(spec.ok_exits.begin(), spec.ok_exits.end(), r.exit_status) ==
                            spec.ok_exits.end()) {
    r.failure = "exit status " + std::to_string(r.exit_status);
  } else if (probed && r.probe.rfind("error", 0) == 0) {
    r.failure = r.probe;
  } else {
    r.ok = true;
  }
  return r;
}

std::string Tail(const std::string& s, size_t n) {
  std::string t = s.size() > n ? s.substr(s.size() - n) : s;
  for (char& c : t)
    if (c == '\n' || c == '\r') c = '|';
  return t;
}

// --------------------------------------------------------------------------- statistics --

struct Stats {
  size_t n = 0;
  double median = 0, p90 = 0, min = 0, max = 0;
};

// Nearest-rank percentiles; the median of an even count is the mean of the middle two.
Stats Summarize(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(v.size())));
  s.p90 = v[std::max<size_t>(rank, 1) - 1];
  return s;
}

void PrintStatsRow(const char* vmm, const char* what, const Stats& s, const char* unit) {
  if (s.n == 0) {
    std::printf("  %-7s %-22s  (no successful runs)\n", vmm, what);
    return;
  }
  std::printf("  %-7s %-22s n=%-3zu median %9.2f  p90 %9.2f  min %9.2f  max %9.2f %s\n", vmm,
              what, s.n, s.median, s.p90, s.min, s.max, unit);
}

// A named VMM configuration and its runs.
struct Contender {
  std::string name;
  RunSpec spec;
  std::vector<RunResult> results;
};

int ReportFailures(const Contender& c) {
  int failures = 0;
  for (size_t i = 0; i < c.results.size(); ++i) {
    const RunResult& r = c.results[i];
    if (r.ok) continue;
    ++failures;
    std::printf("  FAILED %s run %zu: %s; stdout tail: \"%s\"; stderr tail: \"%s\"\n",
                c.name.c_str(), i + 1, r.failure.c_str(), Tail(r.out, 160).c_str(),
                Tail(r.err, 240).c_str());
  }
  return failures;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) {
    if (!s.empty()) s += ' ';
    bool quote = a.find_first_of(" ,\"'") != std::string::npos && a.find(' ') != std::string::npos;
    s += quote ? "'" + a + "'" : a;
  }
  return s;
}

// Alternates the contenders run by run, so that host noise spreads over both.
void RunAlternating(std::vector<Contender>* cs, int runs, int warmup, bool verbose) {
  for (int w = 0; w < warmup; ++w) {
    for (auto& c : *cs) {
      RunResult r = Run(c.spec);
      if (verbose)
        std::printf("  warmup %s: %s\n", c.name.c_str(), r.ok ? "ok" : r.failure.c_str());
    }
  }
  for (int i = 0; i < runs; ++i) {
    for (auto& c : *cs) {
      c.results.push_back(Run(c.spec));
      const RunResult& r = c.results.back();
      if (verbose) {
        std::printf("  run %2d %-7s %s first %8.2f ms  marker %9.2f ms  exit %9.2f ms  status %d\n",
                    i + 1, c.name.c_str(), r.ok ? "ok  " : "FAIL", r.first_ms, r.marker_ms,
                    r.exit_ms, r.exit_status);
        std::fflush(stdout);
      }
    }
  }
}

Stats StatOf(const Contender& c, double RunResult::*field) {
  std::vector<double> v;
  for (const auto& r : c.results)
    if (r.ok) v.push_back(r.*field);
  return Summarize(v);
}

// ---------------------------------------------------------------------------- host info --

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string HostKind(const Options& o) {
  RunSpec spec;
  spec.argv = {o.hearth, "--print-host-kind"};
  spec.ok_exits = {0};
  RunResult r = Run(spec);
  std::string kind = r.out;
  while (!kind.empty() && (kind.back() == '\n' || kind.back() == ' ')) kind.pop_back();
  return r.ok && !kind.empty() ? kind : "unknown (" + r.failure + ")";
}

void PrintHost(const Options& o, const std::string& kind) {
  std::printf("host: hearth --print-host-kind = %s; /sys/module/kvm_pvm %s; %u CPUs\n",
              kind.c_str(), Exists("/sys/module/kvm_pvm") ? "present" : "absent",
              std::thread::hardware_concurrency());
  std::printf("hearth: %s\nqemu:   %s\n", o.hearth.c_str(), o.qemu.c_str());
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return path;
}

std::string TempDir() {
  char tmpl[] = "/tmp/hearth-boot-bench-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  if (d == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return d;
}

std::string JsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

std::string HearthConfig(const std::string& kernel, const std::string& initrd,
                         const std::string& boot_args, int vcpus, int mem_mib) {
  std::ostringstream j;
  j << "{\"boot-source\": {\"kernel_image_path\": " << JsonString(kernel)
    << ", \"boot_args\": " << JsonString(boot_args);
  if (!initrd.empty()) j << ", \"initrd_path\": " << JsonString(initrd);
  j << "}, \"machine-config\": {\"vcpu_count\": " << vcpus << ", \"mem_size_mib\": " << mem_mib
    << "}}\n";
  return j.str();
}

std::vector<std::string> QemuArgv(const Options& o, const std::string& kernel,
                                  const std::string& initrd, const std::string& append,
                                  int mem_mib) {
  std::vector<std::string> a = {o.qemu, "-M", o.qemu_machine, "-enable-kvm", "-cpu", o.qemu_cpu,
                                "-smp", std::to_string(o.vcpus), "-m", std::to_string(mem_mib),
                                "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                                "-device", "isa-debug-exit,iobase=0x3f4,iosize=1",
                                "-kernel", kernel};
  if (!initrd.empty()) a.insert(a.end(), {"-initrd", initrd});
  a.insert(a.end(), {"-append", append});
  return a;
}

// The kernel parameters Hearth adds on kvm_pvm hosts, given to QEMU explicitly.
const std::string kPvmParams =
    std::string(hearth::kPvmKernelParams) + " " + std::string(hearth::kPvmClockParams);

const char* Verdict(bool ok) { return ok ? "MET" : "MISSED"; }

// -------------------------------------------------------------------------------- modes --

// Hearth exits 0 on guest power-off; QEMU's isa-debug-exit exits (value << 1) | 1 = 1.
const std::vector<int> kHearthOk = {0};
const std::vector<int> kQemuOk = {1};

int BootMode(const Options& o, bool linux_guest, const std::string& host_kind) {
  const int runs = o.runs >= 0 ? o.runs : (linux_guest ? 5 : 20);
  const int mem = o.mem_mib > 0 ? o.mem_mib : (linux_guest ? 256 : 128);
  const double timeout_ms = 1000.0 * (o.timeout_s > 0 ? o.timeout_s : (linux_guest ? 300 : 10));
  const int warmup = o.warmup >= 0 ? o.warmup : (linux_guest ? 0 : 1);
  const std::string dir = TempDir();

  std::string h_kernel, q_kernel, initrd, args, marker;
  if (linux_guest) {
    h_kernel = o.guest_dir + "/vmlinux";
    q_kernel = o.guest_dir + "/qemu/vmlinux";
    initrd = o.guest_dir + "/initramfs.cpio";
    args = o.boot_args;
    marker = "hearth-agent: ready";
  } else {
    h_kernel = q_kernel = o.build_dir + "/tests/guests/hello.elf";
    args = "console=ttyS0";
    marker = "hello from tiny guest";
  }
  for (const auto& f : {h_kernel, q_kernel, initrd}) {
    if (!f.empty() && !Exists(f)) {
      std::printf("missing %s (build it first: see benchmarks/run-boot-bench.sh)\n", f.c_str());
      return 1;
    }
  }
  std::string q_append = args;
  if (host_kind == "pvm") q_append += std::string(" ") + kPvmParams;

  Contender hearth{"hearth", {}, {}};
  hearth.spec.argv = {o.hearth, "--no-api", "--config-file",
                      WriteFile(dir + "/vm.json", HearthConfig(h_kernel, initrd, args, o.vcpus, mem))};
  hearth.spec.marker = marker;
  hearth.spec.ok_exits = kHearthOk;
  hearth.spec.timeout_ms = timeout_ms;
  Contender qemu{"qemu", {}, {}};
  qemu.spec.argv = QemuArgv(o, q_kernel, initrd, q_append, mem);
  qemu.spec.marker = marker;
  qemu.spec.ok_exits = kQemuOk;
  qemu.spec.timeout_ms = timeout_ms;

  std::printf("\n== %s: %s, %d vCPU, %d MiB, %d runs per VMM (alternating), %d warm-up ==\n",
              linux_guest ? "linux" : "floor",
              linux_guest ? "bundled Linux guest (initramfs)" : "tiny PVH guest hello.elf",
              o.vcpus, mem, runs, warmup);
  if (linux_guest) {
    std::printf("kernels: Hearth boots %s; QEMU boots %s (the same kernel with the early int3\n"
                "         self-test skipped: QEMU cannot deliver that int3 on kvm_pvm hosts)\n",
                h_kernel.c_str(), q_kernel.c_str());
    std::printf("guest command line (both): %s\n", args.c_str());
    if (host_kind == "pvm")
      std::printf("  + '%s' (Hearth adds it itself on pvm hosts; given to QEMU in -append)\n",
                  kPvmParams.c_str());
  }
  std::printf("hearth config %s:\n  %s", hearth.spec.argv.back().c_str(),
              HearthConfig(h_kernel, initrd, args, o.vcpus, mem).c_str());
  std::printf("hearth cmd: %s\n", Join(hearth.spec.argv).c_str());
  std::printf("qemu cmd:   %s\n", Join(qemu.spec.argv).c_str());
  std::printf("events: start = just before fork(); first = first byte on the VMM's stdout;\n"
              "        marker = the read that completed '%s'; exit = pidfd readable\n",
              marker.c_str());
  std::fflush(stdout);

  std::vector<Contender> cs = {hearth, qemu};
  RunAlternating(&cs, runs, warmup, o.verbose);

  std::printf("results (ms):\n");
  struct Row {
    const char* label;
    double RunResult::*field;
  };
  const std::vector<Row> rows =
      linux_guest ? std::vector<Row>{{"start -> first output", &RunResult::first_ms},
                                     {"start -> agent ready", &RunResult::marker_ms},
                                     {"start -> exit", &RunResult::exit_ms}}
                  : std::vector<Row>{{"start -> first output", &RunResult::first_ms},
                                     {"start -> exit", &RunResult::exit_ms}};
  for (const Row& row : rows) {
    for (const auto& c : cs) PrintStatsRow(c.name.c_str(), row.label, StatOf(c, row.field), "ms");
  }
  int failures = 0;
  for (const auto& c : cs) {
    size_t ok = std::count_if(c.results.begin(), c.results.end(), [](auto& r) { return r.ok; });
    std::printf("  %-7s successful runs: %zu/%zu\n", c.name.c_str(), ok, c.results.size());
    failures += ReportFailures(c);
  }
  const char* mode = linux_guest ? "linux" : "floor";
  for (const Row& row : rows) {
    Stats h = StatOf(cs[0], row.field), q = StatOf(cs[1], row.field);
    if (h.n && q.n)
      std::printf("summary: %s %-22s hearth %9.2f ms  qemu %9.2f ms  ratio hearth/qemu %.3f\n",
                  mode, row.label, h.median, q.median, h.median / q.median);
  }
  Stats h = StatOf(cs[0], linux_guest ? &RunResult::marker_ms : &RunResult::first_ms);
  Stats q = StatOf(cs[1], linux_guest ? &RunResult::marker_ms : &RunResult::first_ms);
  if (h.n && q.n) {
    if (linux_guest) {
      std::printf("target: Linux to init <= 1/2 of QEMU's: ratio %.3f -> %s\n",
                  h.median / q.median, Verdict(h.median / q.median <= 0.5));
      if (host_kind == "hardware")
        std::printf("target: < 150 ms to init on hardware-virtualization hosts: %.1f ms -> %s\n",
                    h.median, Verdict(h.median < 150));
      else
        std::printf("target: < 150 ms to init on hardware-virtualization hosts: not measurable "
                    "here (host kind %s: guest code is interpreted)\n", host_kind.c_str());
    } else {
      std::printf("target: launch floor (start -> first output) < 2 ms: %.2f ms -> %s\n",
                  h.median, Verdict(h.median < 2.0));
      std::printf("target: launch floor <= 1/3 of QEMU's: ratio %.3f -> %s\n",
                  h.median / q.median, Verdict(h.median / q.median <= 1.0 / 3));
    }
  }
  std::printf("failures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}

// Memory: sums over /proc/PID/smaps, with the guest RAM mappings (anonymous mappings whose size
// equals a guest RAM region, one mapping per region) set apart.
struct MemProbeCtx {
  std::vector<uint64_t> guest_region_kib;
};

std::string ProbeSmaps(pid_t pid, void* vctx) {
  auto* ctx = static_cast<MemProbeCtx*>(vctx);
  // Sample until the RSS is stable (two equal readings), at most 10 times.
  std::string result;
  long prev_total = -1;
  for (int attempt = 0; attempt < 10; ++attempt) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/smaps");
    if (!f) return "error: cannot read /proc/" + std::to_string(pid) + "/smaps";
    struct Mapping {
      std::string header;
      bool anonymous = false;
      long size = 0, rss = 0, priv = 0, pss = 0;
    };
    std::vector<Mapping> maps;
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
          line.find('-') < line.find(' ')) {
        Mapping m;
        m.header = line;
        // Fields: range perms offset dev inode [path]
        std::istringstream is(line);
        std::string range, perms, off, dev, inode, path;
        is >> range >> perms >> off >> dev >> inode >> path;
        m.anonymous = path.empty() && inode == "0";
        maps.push_back(m);
        continue;
      }
      if (maps.empty()) continue;
      long kib = 0;
      char key[64];
      if (std::sscanf(line.c_str(), "%63[^:]: %ld kB", key, &kib) != 2) continue;
      std::string k = key;
      if (k == "Size") maps.back().size = kib;
      else if (k == "Rss") maps.back().rss = kib;
      else if (k == "Pss") maps.back().pss = kib;
      else if (k == "Private_Clean" || k == "Private_Dirty") maps.back().priv += kib;
    }
    long total = 0, total_priv = 0, total_pss = 0;
    for (const auto& m : maps) {
      total += m.rss;
      total_priv += m.priv;
      total_pss += m.pss;
    }
    long guest = 0, guest_priv = 0, guest_pss = 0;
    std::vector<bool> used(maps.size(), false);
    for (uint64_t want : ctx->guest_region_kib) {
      bool found = false;
      for (size_t i = 0; i < maps.size(); ++i) {
        if (used[i] || !maps[i].anonymous || static_cast<uint64_t>(maps[i].size) != want) continue;
        used[i] = found = true;
        guest += maps[i].rss;
        guest_priv += maps[i].priv;
        guest_pss += maps[i].pss;
        break;
      }
      if (!found)
        return "error: no anonymous mapping of exactly " + std::to_string(want) +
               " KiB (guest RAM) in smaps";
    }
    char buf[256];
    std::snprintf(buf, sizeof(buf), "%ld %ld %ld %ld %ld %ld", total, guest, total - guest,
                  total_priv - guest_priv, total_pss - guest_pss, static_cast<long>(maps.size()));
    result = buf;
    if (total == prev_total) break;
    prev_total = total;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return result;
}

int MemoryMode(const Options& o) {
  const int runs = o.runs >= 0 ? o.runs : 5;
  const int mem = o.mem_mib > 0 ? o.mem_mib : 128;
  const double timeout_ms = 1000.0 * (o.timeout_s > 0 ? o.timeout_s : 10);
  const std::string dir = TempDir();
  const std::string kernel = o.build_dir + "/tests/guests/echo.elf";
  if (!Exists(kernel)) {
    std::printf("missing %s\n", kernel.c_str());
    return 1;
  }
  MemProbeCtx hctx, qctx;
  for (const auto& r : hearth::layout::RamRegions(static_cast<uint64_t>(mem) << 20))
    hctx.guest_region_kib.push_back(r.size >> 10);
  qctx.guest_region_kib = {static_cast<uint64_t>(mem) << 10};  // One RAM block in QEMU.

  Contender hearth{"hearth", {}, {}};
  hearth.spec.argv = {o.hearth, "--no-api", "--config-file",
                      WriteFile(dir + "/vm.json",
                                HearthConfig(kernel, "", "console=ttyS0", o.vcpus, mem))};
  Contender qemu{"qemu", {}, {}};
  qemu.spec.argv = QemuArgv(o, kernel, "", "console=ttyS0", mem);
  for (auto* c : {&hearth, &qemu}) {
    c->spec.timeout_ms = timeout_ms;
    c->spec.settle_ms = 1500;
    c->spec.probe = ProbeSmaps;
  }
  hearth.spec.probe_ctx = &hctx;
  qemu.spec.probe_ctx = &qctx;

  std::printf("\n== memory: idle tiny guest echo.elf (waits for serial input), %d vCPU, %d MiB, "
              "%d runs per VMM ==\n", o.vcpus, mem, runs);
  std::printf("hearth cmd: %s\nqemu cmd:   %s\n", Join(hearth.spec.argv).c_str(),
              Join(qemu.spec.argv).c_str());
  std::printf("measure: 1.5 s after start, /proc/PID/smaps summed (re-read until stable);\n"
              "         overhead = total Rss - Rss of the guest RAM mapping(s) (anonymous,\n"
              "         size == guest RAM region); private = Private_Clean+Private_Dirty outside\n"
              "         guest RAM (excludes shared library pages)\n");
  std::fflush(stdout);

  std::vector<Contender> cs = {hearth, qemu};
  RunAlternating(&cs, runs, 0, o.verbose);

  int failures = 0;
  std::vector<Stats> overhead(2);
  for (size_t ci = 0; ci < cs.size(); ++ci) {
    const auto& c = cs[ci];
    std::vector<double> total, guest, over, priv, pss;
    for (const auto& r : c.results) {
      if (!r.ok) continue;
      long t, g, ov, pv, ps, nmaps;
      if (std::sscanf(r.probe.c_str(), "%ld %ld %ld %ld %ld %ld", &t, &g, &ov, &pv, &ps,
                      &nmaps) != 6)
        continue;
      total.push_back(t);
      guest.push_back(g);
      over.push_back(ov);
      priv.push_back(pv);
      pss.push_back(ps);
      if (o.verbose)
        std::printf("  %s: total %ld KiB, guest %ld KiB, overhead %ld KiB, private %ld KiB, "
                    "%ld mappings\n", c.name.c_str(), t, g, ov, pv, nmaps);
    }
    PrintStatsRow(c.name.c_str(), "total Rss", Summarize(total), "KiB");
    PrintStatsRow(c.name.c_str(), "guest RAM Rss", Summarize(guest), "KiB");
    PrintStatsRow(c.name.c_str(), "overhead Rss", Summarize(over), "KiB");
    PrintStatsRow(c.name.c_str(), "overhead private", Summarize(priv), "KiB");
    PrintStatsRow(c.name.c_str(), "overhead Pss", Summarize(pss), "KiB");
    overhead[ci] = Summarize(over);
    std::printf("  %-7s successful runs: %zu/%zu\n", c.name.c_str(), overhead[ci].n,
                c.results.size());
    failures += ReportFailures(c);
  }
  if (overhead[0].n && overhead[1].n) {
    std::printf("summary: memory overhead Rss  hearth %.0f KiB (%.2f MiB)  qemu %.0f KiB "
                "(%.2f MiB)  ratio hearth/qemu %.3f\n",
                overhead[0].median, overhead[0].median / 1024, overhead[1].median,
                overhead[1].median / 1024, overhead[0].median / overhead[1].median);
    std::printf("target: overhead < 3 MiB: %.2f MiB -> %s\n", overhead[0].median / 1024,
                Verdict(overhead[0].median < 3 * 1024));
  }
  std::printf("failures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = ParseOptions(argc, argv);
  if (!opts) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const Options& o = *opts;
  ::signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string kind = HostKind(o);
  PrintHost(o, kind);
  std::printf("design targets: launch floor < 2 ms and <= 1/3 of QEMU's; Linux to init <= 1/2 "
              "of QEMU's;\n                memory overhead < 3 MiB; < 150 ms to init on "
              "hardware-virtualization hosts\n");
  if (o.mode == "host") return 0;
  if (o.mode == "floor") return BootMode(o, false, kind);
  if (o.mode == "linux") return BootMode(o, true, kind);
  if (o.mode == "memory") return MemoryMode(o);
  std::fputs(kUsage, stderr);
  return 2;
}
