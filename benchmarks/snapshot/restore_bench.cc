// Restore benchmark through the API, with the Linux guest (build/guest) and a guest service:
// the agent's `vsock_echo:5000` (a kthread echoing every vsock connection on port 5000) and
// `vsock_hold:5001:<s>` (keeps the guest idle in the kernel until the host connects to 5001).
//
// Per guest size (default 128 and 1024 MiB): one boot (`hearth --api-sock`, configured through
// the API), wait for the echo listener, PATCH /vm Paused, then:
//   create:   PUT /snapshot/create (Full), --creates times (each one rewrites both files):
//             client side, request written -> 204 read.
//   restore:  --runs times: a fresh `hearth --api-sock` process (started and answering its
//             socket before the clock starts), PUT /snapshot/load {File backend, resume_vm,
//             vsock_override}:
//               load->running (client): request written -> 204 read. Hearth answers 204 after
//                 the vCPU threads were started on the restored state (resume_vm), so this is
//                 "received -> guest running" plus one local HTTP round trip.
//               received->running (API): Hearth's own log line "API PUT /snapshot/load: 204, N
//                 us after the request was received": from the API thread having the parsed
//                 request to the answer ready (vCPUs started); "of which VMM thread": its
//                 "microVM restored from ... in N us", the VMM thread's part of that.
//               load->echo:             request written -> the first reply of the guest's echo
//                 service: CONNECT 5000 on the clone's vsock socket, "ping" sent, "ping" read
//                 back (includes the guest taking the snapshot's TRANSPORT_RESET).
//   clones:   --clones clones of the snapshot alive at once, each restored and answering an
//             echo; the sum of their PSS (/proc/PID/smaps_rollup) against clones x guest size.
// Median / p90 (nearest rank) / min / max.
//
//   hearth_restore_bench [--runs 30] [--creates 5] [--clones 20] [--mem 128,1024]
//                        [--guest-dir DIR] [--keep-going]
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/api_client.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace hearth::testing;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kEchoPort = 5000;
constexpr uint32_t kHoldPort = 5001;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double median = 0, p90 = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  const size_t rank = (v.size() * 90 + 99) / 100;
  s.p90 = v[std::max<size_t>(rank, 1) - 1];
  s.min = v.front();
  s.max = v.back();
  return s;
}

void Print(const char* what, unsigned mib, const std::vector<double>& v) {
  const Stats s = Summarize(v);
  std::printf("  %-26s %5u MiB  n=%-3zu median %9.3f ms  p90 %9.3f  min %9.3f  max %9.3f\n", what, mib,
              v.size(), s.median, s.p90, s.min, s.max);
  std::fflush(stdout);
}

std::string GuestDir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("HEARTH_GUEST_DIR"); env && *env) return env;
  return HEARTH_GUEST_DIR_DEFAULT;
}

// Connects to a vsock device's UNIX socket, asks for `port`, waits for "OK <n>\n". -1 on failure.
int VsockConnect(const std::string& uds, uint32_t port, std::chrono::milliseconds timeout) {
  int fd = ConnectUnix(uds);
  if (fd < 0) return -1;
  const std::string line = "CONNECT " + std::to_string(port) + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    return -1;
  }
  std::string got;
  const auto deadline = Clock::now() + timeout;
  while (got.find('\n') == std::string::npos && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);  // Byte by byte: what follows the line is the stream.
    if (n <= 0) break;
    got.push_back(c);
  }
  if (got.rfind("OK ", 0) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends "ping" and reads it back; false on timeout or a short answer.
bool Echo(int fd, std::chrono::milliseconds timeout) {
  if (::send(fd, "ping", 4, MSG_NOSIGNAL) != 4) return false;
  std::string got;
  const auto deadline = Clock::now() + timeout;
  while (got.size() < 4 && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[16];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got == "ping";
}

// Connects to the echo service (retrying while the guest is not there yet) and does one echo.
bool EchoOnce(const std::string& uds, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int fd = VsockConnect(uds, kEchoPort, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (fd >= 0) {
      const bool ok = Echo(fd, std::chrono::seconds(30));
      ::close(fd);
      return ok;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The "in N us" of Hearth's "microVM restored from ... in N us" log line (VMM thread: request
// taken -> vCPUs started), or -1.
double VmmRestoreMs(const std::string& log) {
  size_t p = log.find("microVM restored from ");
  if (p == std::string::npos) return -1;
  p = log.find(" in ", p);
  if (p == std::string::npos) return -1;
  return std::strtod(log.c_str() + p + 4, nullptr) / 1000.0;
}

// The N of Hearth's "API PUT /snapshot/load: 204, N us after the request was received" (API
// thread: request parsed -> answer ready, the guest running), or -1.
double ApiRestoreMs(const std::string& log) {
  size_t p = log.find("API PUT /snapshot/load: 204, ");
  if (p == std::string::npos) return -1;
  return std::strtod(log.c_str() + p + 29, nullptr) / 1000.0;
}

uint64_t PssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::strtoull(line.c_str() + 4, nullptr, 10);
  }
  return 0;
}

std::string LoadBody(const std::string& snap, const std::string& mem, const std::string& uds) {
  return R"({"snapshot_path":")" + snap + R"(","mem_backend":{"backend_type":"File","backend_path":")" + mem +
         R"("},"resume_vm":true,"vsock_override":{"uds_path":")" + uds + R"("}})";
}

bool Expect204(const HttpResponse& r, const std::string& what) {
  if (r.connected && r.status == 204) return true;
  std::fprintf(stderr, "restore_bench: %s: %s\n", what.c_str(), r.Describe().c_str());
  return false;
}

struct Options {
  int runs = 30;
  int creates = 5;
  int clones = 20;
  std::vector<unsigned> mem = {128, 1024};
  std::string guest_dir;
};

// One guest size. Returns false when something failed (already reported).
bool RunSize(const Options& o, unsigned mib) {
  const std::string guest = GuestDir(o.guest_dir);
  TempDir dir;
  const std::string snap = dir.Path("vm.snap"), mem = dir.Path("vm.mem");
  {
    HearthApiProcess base(dir, {"--level", "Info"}, "base.sock");
    if (!base.ready()) {
      std::fprintf(stderr, "restore_bench: hearth did not start: %s\n", base.Stderr().c_str());
      return false;
    }
    const std::string boot_args =
        "console=ttyS0 reboot=k panic=-1 hearth_agent.checks=vsock_echo:" + std::to_string(kEchoPort) +
        ",vsock_hold:" + std::to_string(kHoldPort) + ":3600 hearth_agent.action=poweroff";
    if (!Expect204(base.Call("PUT", "/boot-source",
                             R"({"kernel_image_path":")" + guest + R"(/vmlinux","initrd_path":")" + guest +
                                 R"(/initramfs.cpio","boot_args":")" + boot_args + R"("})"),
                   "PUT /boot-source") ||
        !Expect204(base.Call("PUT", "/machine-config",
                             R"({"vcpu_count":1,"mem_size_mib":)" + std::to_string(mib) + "}"),
                   "PUT /machine-config") ||
        !Expect204(base.Call("PUT", "/vsock", R"({"guest_cid":3,"uds_path":")" + dir.Path("base.vsock") + R"("})"),
                   "PUT /vsock") ||
        !Expect204(base.Call("PUT", "/actions", R"({"action_type":"InstanceStart"})"), "InstanceStart")) {
      return false;
    }
    const auto boot_start = Clock::now();
    // The echo service is up once a connection echoes (vsock_hold then keeps the guest idle).
    if (!base.WaitForOutput("vsock_echo port=5000 listen=ok", std::chrono::seconds(300)) ||
        !EchoOnce(dir.Path("base.vsock"), std::chrono::seconds(120))) {
      std::fprintf(stderr, "restore_bench: the guest's echo service did not come up:\n%s\n%s\n",
                   base.Stdout().c_str(), base.Stderr().c_str());
      return false;
    }
    std::printf("%u MiB guest: booted to its echo service in %.1f s\n", mib, Ms(Clock::now() - boot_start) / 1000);
    if (!Expect204(base.Call("PATCH", "/vm", R"({"state":"Paused"})"), "PATCH /vm Paused")) return false;
    std::vector<double> create;
    const std::string create_body =
        R"({"snapshot_type":"Full","snapshot_path":")" + snap + R"(","mem_file_path":")" + mem + R"("})";
    for (int i = 0; i < o.creates; ++i) {
      const auto t0 = Clock::now();
      HttpResponse r = Http(base.socket(), "PUT", "/snapshot/create", create_body, std::chrono::seconds(120));
      const auto t1 = Clock::now();
      if (!Expect204(r, "PUT /snapshot/create")) return false;
      create.push_back(Ms(t1 - t0));
    }
    Print("snapshot create", mib, create);
    struct stat st {};
    ::stat(mem.c_str(), &st);
    std::printf("  memory file %llu MiB, %llu MiB allocated on disk\n",
                static_cast<unsigned long long>(st.st_size >> 20),
                static_cast<unsigned long long>((st.st_blocks * 512) >> 20));
  }  // The booted VM is gone.

  std::vector<double> running_client, running_api, running_vmm, echo;
  for (int i = 0; i < o.runs; ++i) {
    const std::string name = "r" + std::to_string(i);
    HearthApiProcess clone(dir, {"--level", "Info"}, name + ".sock");
    if (!clone.ready()) {
      std::fprintf(stderr, "restore_bench: hearth did not start: %s\n", clone.Stderr().c_str());
      return false;
    }
    const std::string uds = dir.Path(name + ".vsock");
    const std::string body = LoadBody(snap, mem, uds);
    const auto t0 = Clock::now();
    HttpResponse r = Http(clone.socket(), "PUT", "/snapshot/load", body, std::chrono::seconds(60));
    const auto t1 = Clock::now();
    if (!Expect204(r, "PUT /snapshot/load")) return false;
    const bool echoed = EchoOnce(uds, std::chrono::seconds(120));
    const auto t2 = Clock::now();
    if (!echoed) {
      std::fprintf(stderr, "restore_bench: restore %d: no echo from the guest:\n%s\n%s\n", i,
                   clone.Stdout().c_str(), clone.Stderr().c_str());
      return false;
    }
    running_client.push_back(Ms(t1 - t0));
    echo.push_back(Ms(t2 - t0));
    const std::string log = clone.Stderr();
    if (double api = ApiRestoreMs(log); api >= 0) running_api.push_back(api);
    if (double vmm = VmmRestoreMs(log); vmm >= 0) running_vmm.push_back(vmm);
    clone.Kill();
  }
  Print("load -> running (client)", mib, running_client);
  Print("received -> running (API)", mib, running_api);
  Print("  of which VMM thread", mib, running_vmm);
  Print("load -> first echo reply", mib, echo);

  if (o.clones > 0) {
    std::vector<std::unique_ptr<HearthApiProcess>> clones;
    for (int i = 0; i < o.clones; ++i) {
      const std::string name = "c" + std::to_string(i);
      clones.push_back(std::make_unique<HearthApiProcess>(dir, std::vector<std::string>{}, name + ".sock"));
      HearthApiProcess& c = *clones.back();
      const std::string uds = dir.Path(name + ".vsock");
      if (!c.ready() || !Expect204(c.Call("PUT", "/snapshot/load", LoadBody(snap, mem, uds)), "clone load")) return false;
      if (!EchoOnce(uds, std::chrono::seconds(120))) {
        std::fprintf(stderr, "restore_bench: clone %d does not echo\n", i);
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    uint64_t total = 0, max = 0, min = UINT64_MAX;
    for (auto& c : clones) {
      const uint64_t pss = PssKib(c->pid());
      total += pss;
      max = std::max(max, pss);
      min = std::min(min, pss);
    }
    std::printf("  %d clones of one %u MiB snapshot, all answering: total PSS %.1f MiB vs %d x %u = %u MiB"
                " (%.1f%%); per clone %.1f MiB (min %.1f, max %.1f)\n",
                o.clones, mib, total / 1024.0, o.clones, mib, o.clones * mib,
                100.0 * (total / 1024.0) / (o.clones * mib), total / 1024.0 / o.clones, min / 1024.0,
                max / 1024.0);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool keep_going = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "restore_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto count = [&](int min) {
      const std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < min || n > 1000) {
        std::fprintf(stderr, "restore_bench: %s: '%s' is not a count in [%d, 1000]\n", a.c_str(), v.c_str(), min);
        std::exit(2);
      }
      return static_cast<int>(n);
    };
    if (a == "--runs") {
      o.runs = count(1);
    } else if (a == "--creates") {
      o.creates = count(1);
    } else if (a == "--clones") {
      o.clones = count(0);
    } else if (a == "--guest-dir") {
      o.guest_dir = value();
    } else if (a == "--keep-going") {
      keep_going = true;
    } else if (a == "--mem") {
      o.mem.clear();
      std::stringstream s(value());
      std::string item;
      while (std::getline(s, item, ',')) {
        char* end = nullptr;
        unsigned long m = std::strtoul(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || m < 16 || m > 65536) {
          std::fprintf(stderr, "restore_bench: --mem: '%s' is not a size in MiB\n", item.c_str());
          return 2;
        }
        o.mem.push_back(static_cast<unsigned>(m));
      }
    } else {
      std::fprintf(stderr,
                   "usage: hearth_restore_bench [--runs 30] [--creates 5] [--clones 20] [--mem 128,1024] "
                   "[--guest-dir DIR] [--keep-going]\n");
      return 2;
    }
  }
  const std::string guest = GuestDir(o.guest_dir);
  if (::access((guest + "/vmlinux").c_str(), R_OK) != 0 || ::access((guest + "/initramfs.cpio").c_str(), R_OK) != 0) {
    std::fprintf(stderr, "restore_bench: no vmlinux / initramfs.cpio in %s: run resources/build-guest.sh\n",
                 guest.c_str());
    return 1;
  }
  std::printf("hearth_restore_bench: hearth %s, guest %s, %d restores, %d creates, %d clones per size\n",
              HearthBinary().c_str(), guest.c_str(), o.runs, o.creates, o.clones);
  int failures = 0;
  for (unsigned mib : o.mem) {
    if (!RunSize(o, mib)) {
      ++failures;
      if (!keep_going) return 1;
    }
  }
  return failures ? 1 : 0;
}
