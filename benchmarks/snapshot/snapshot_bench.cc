// Snapshot benchmark, in process, with the counter guest (tests/guests/counter.S):
//   create:   SaveSnapshot (Full) of a paused VM: KVM state + memory file + state file, each
//             fsynced and renamed into place. From the call to its return.
//   restore:  MicroVm::RestoreFromSnapshot with the File backend (state file read and checked,
//             memory file mapped MAP_PRIVATE, KVM VM, devices and vCPUs rebuilt). From the call
//             to its return: the VM is ready to run.
//   running:  restore + Run() until the vCPU thread has entered the guest and is counted as
//             started (ResumeVcpus returned with the vCPU thread up).
//   /F, /U:   File backend (memory file mapped MAP_PRIVATE) or Uffd backend (anonymous
//             memory, pages served by a hearth_uffd_handler process started before the clock).
//   output:   restore until the guest's first console byte after the restore: the guest has
//             executed (includes up to one delay loop of the counter, ~10 ms on kvm_pvm).
// Median / p90 / min / max over N runs, for 128 MiB and 1 GiB guests.
//   hearth_snapshot_bench [--runs N] [--dir DIR]
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/fd.h"
#include "base/log.h"
#include "vmm/microvm.h"
#include "vmm/snapshot_cli.h"

using namespace hearth;
using namespace std::chrono_literals;

namespace {

struct Stats {
  double median = 0, p90 = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  if (v.empty()) return s;
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  size_t rank = (v.size() * 90 + 99) / 100;
  s.p90 = v[std::max<size_t>(rank, 1) - 1];
  s.min = v.front();
  s.max = v.back();
  return s;
}

void Print(const char* what, uint64_t mib, const std::vector<double>& v) {
  Stats s = Summarize(v);
  std::printf("  %-10s %5lu MiB  n=%-3zu median %8.2f ms  p90 %8.2f  min %8.2f  max %8.2f\n", what,
              static_cast<unsigned long>(mib), v.size(), s.median, s.p90, s.min, s.max);
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

struct Vm {
  std::unique_ptr<MicroVm> vm;
  Fd console;
  EventFd stop = std::move(EventFd::Create()).value();
  std::thread thread;
  std::string console_path;
  void Start() {
    thread = std::thread([this] { (void)vm->Run(); });
  }
  void Stop() {
    if (!thread.joinable()) return;
    (void)stop.Signal();
    thread.join();
  }
  ~Vm() { Stop(); }
};

MicroVmOptions Options(Vm& v) {
  v.console = std::move(Fd::Open(v.console_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)).value();
  MicroVmOptions o;
  o.host_kind = DetectHostKind();
  o.console_in = -1;
  o.console_out = v.console.get();
  o.stop_event_fd = v.stop.get();
  return o;
}

bool WaitForSize(const std::string& path, uint64_t size, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (FileSize(path) >= size) return true;
    std::this_thread::sleep_for(100us);
  }
  return false;
}

Status PauseWhenStarted(MicroVm& vm) {
  for (int i = 0; i < 2000; ++i) {
    if (vm.PauseVcpus().ok()) return Ok();
    std::this_thread::sleep_for(5ms);
  }
  return vm.PauseVcpus();
}

int Bench(uint64_t mib, int runs, const std::string& dir) {
  const std::string state = dir + "/bench.snap", mem = dir + "/bench.mem";
  std::vector<double> create_ms;
  {
    Vm boot;
    boot.console_path = dir + "/boot.out";
    VmResources r;
    r.boot_source = BootSourceConfig{HEARTH_GUEST_COUNTER, std::nullopt, std::nullopt};
    r.machine.mem_size_mib = mib;
    BuildError err{BuildStage::kHost, Error("")};
    boot.vm = MicroVm::Create(r, Options(boot), &err);
    if (!boot.vm) {
      std::fprintf(stderr, "boot: %s\n", err.error.message().c_str());
      return 1;
    }
    boot.Start();
    if (!WaitForSize(boot.console_path, 64, 30s)) {
      std::fprintf(stderr, "the counter guest printed nothing\n");
      return 1;
    }
    if (auto s = PauseWhenStarted(*boot.vm); !s.ok()) {
      std::fprintf(stderr, "pause: %s\n", s.error().message().c_str());
      return 1;
    }
    const int create_runs = std::min(runs, 10);
    for (int i = 0; i < create_runs; ++i) {
      uint64_t t0 = MonotonicMicros();
      if (auto s = boot.vm->SaveSnapshot({SnapshotType::kFull, state, mem}); !s.ok()) {
        std::fprintf(stderr, "snapshot: %s\n", s.error().message().c_str());
        return 1;
      }
      create_ms.push_back((MonotonicMicros() - t0) / 1000.0);
    }
  }
  if (getenv("HEARTH_BENCH_DEBUG")) (void)DescribeSnapshot(state, std::cout, std::cerr);
  for (bool uffd : {false, true}) {
  std::vector<double> restore_ms, running_ms, output_ms;
  for (int i = 0; i < runs; ++i) {
    Vm v;
    v.console_path = dir + "/restore.out";
    LoadSnapshot p;
    p.snapshot_path = state;
    p.backend_path = mem;
    p.resume_vm = false;
    pid_t handler = -1;
    if (uffd) {
      // A fresh handler per restore (each serves one VMM), started before the clock.
      const std::string sock = dir + "/uffd.sock";
      ::unlink(sock.c_str());
      handler = fork();
      if (handler == 0) {
        // Quiet: the handler's exit line would interleave with the table.
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 2);
        execl(HEARTH_UFFD_HANDLER, HEARTH_UFFD_HANDLER, sock.c_str(), mem.c_str(), nullptr);
        _exit(127);
      }
      while (::access(sock.c_str(), F_OK) != 0) std::this_thread::sleep_for(200us);
      p.backend_type = MemBackendType::kUffd;
      p.backend_path = sock;
    }
    MicroVmOptions o = Options(v);
    uint64_t t0 = MonotonicMicros();
    auto vm = MicroVm::RestoreFromSnapshot(p, o);
    uint64_t t1 = MonotonicMicros();
    if (!vm.ok()) {
      std::fprintf(stderr, "restore: %s\n", vm.error().message().c_str());
      return 1;
    }
    v.vm = std::move(vm).value();
    v.Start();
    // Run() starts the vCPU threads parked; wait until they are, then let them go.
    while (!v.vm->vcpus_paused()) std::this_thread::sleep_for(20us);
    v.vm->ResumeVcpus();
    uint64_t t2 = MonotonicMicros();
    if (!WaitForSize(v.console_path, 1, 10s)) {
      std::fprintf(stderr, "restored guest printed nothing\n");
      return 1;
    }
    uint64_t t3 = MonotonicMicros();
    restore_ms.push_back((t1 - t0) / 1000.0);
    running_ms.push_back((t2 - t0) / 1000.0);
    output_ms.push_back((t3 - t0) / 1000.0);
    v.Stop();
    v.vm.reset();
    if (handler > 0) ::waitpid(handler, nullptr, 0);
  }
  if (!uffd) Print("create", mib, create_ms);
  Print(uffd ? "restore/U" : "restore/F", mib, restore_ms);
  Print(uffd ? "running/U" : "running/F", mib, running_ms);
  Print(uffd ? "output/U" : "output/F", mib, output_ms);
  }
  std::printf("  memory file %lu MiB apparent\n", static_cast<unsigned long>(FileSize(mem) >> 20));
  ::unlink(state.c_str());
  ::unlink(mem.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 30;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  Vcpu::InstallKickHandler();
  if (getenv("HEARTH_BENCH_DEBUG")) SetLogLevel(LogLevel::kDebug);
  std::printf("Snapshot create / restore, counter guest, 1 vCPU, File backend, %d restores\n", runs);
  for (uint64_t mib : {128, 1024}) {
    if (int rc = Bench(mib, runs, dir); rc != 0) return rc;
  }
  return 0;
}
