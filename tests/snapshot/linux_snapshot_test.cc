// A Linux guest (build/guest, with the in-kernel agent) snapshotted in the middle of a timed
// sleep and restored in a fresh MicroVm: after the restore the sleep ends (the LAPIC timer,
// kvm-clock and interrupts came back), the guest's vsock listener accepts new connections, the
// guest does TCP to a host listener through its virtio-net tap, the virtio-blk check writes and
// reads its disk through the restored queues, and the agent powers the guest off. No second
// boot ("Linux version" once). A second clone of the same snapshot, restored once the first
// one's TCP exchange is done, in another network namespace with `network_overrides` naming
// another tap, does the same TCP exchange there (and is stopped before it touches the disk).
// One boot for the whole test: Linux takes 20-60 s to boot on kvm_pvm.
//
// Needs root: the test moves itself into a new network namespace (unshare) holding the tap.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>

#include "running_vm.h"
#include "test_util.h"

namespace hearth {
namespace {

using unit::TempDir;

std::string GuestDir() {
  const char* env = std::getenv("HEARTH_GUEST_DIR");
  return env ? env : HEARTH_GUEST_DIR_DEFAULT;
}

// Connects to the vsock device's UNIX socket and sends `CONNECT <port>\n`.
Fd HostConnect(const std::string& uds, uint32_t port) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, uds.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  const std::string line = "CONNECT " + std::to_string(port) + "\n";
  EXPECT_EQ(::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
  return fd;
}

// Reads until `want` bytes arrived, EOF or `timeout`; "<EOF>" appended on EOF, "<ERR>" on error.
std::string ReadUpTo(const Fd& fd, size_t want, std::chrono::seconds timeout) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, std::min(sizeof(buf), want - got.size()), MSG_DONTWAIT);
    if (n == 0) return got + "<EOF>";
    if (n < 0) return errno == EAGAIN ? got : got + "<ERR>";
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Connects to `port` through the vsock device's socket until the guest accepts (its listener
// may not be up yet: the guest then resets the request and the host socket closes).
bool HostConnectWhenListening(const std::string& uds, uint32_t port, std::chrono::seconds timeout,
                              Fd* out) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Fd fd = HostConnect(uds, port);
    if (ReadUpTo(fd, 3, 30s) == "OK ") {
      *out = std::move(fd);
      return true;
    }
    std::this_thread::sleep_for(500ms);
  }
  return false;
}

bool WaitForText(const RunningVm& vm, const std::string& text, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (vm.Console().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// ---- The network: a tap in a private network namespace, and the host end of `net:` ----------

constexpr const char* kHostIp = "192.168.100.1";
constexpr const char* kGuestIp = "192.168.100.2";
constexpr const char* kGuestMac = "06:00:c0:a8:64:02";
constexpr int kNetPort = 5201;
constexpr size_t kNetBytes = 64 * 1024;  // Small: the guest's network stack is interpreted.
// The agent's data streams (hearth_agent.c): the word at byte offset o is o * kPatternMul + seed.
constexpr uint64_t kPatternMul = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kSeedNetTx = 0x6865617274687478ull;  // guest->host
constexpr uint64_t kSeedNetRx = 0x6865617274687278ull;  // host->guest

std::string PatternBytes(uint64_t seed, size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t v = i * kPatternMul + seed;
    std::memcpy(out.data() + i, &v, 8);  // Little-endian host, as the guest.
  }
  return out;
}

// Moves the calling thread into a new network namespace (threads it starts later inherit it)
// with `tap` up as kHostIp/24. Returns "" or what failed.
std::string EnterNamespaceWithTap(const std::string& tap) {
  if (::unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
  for (const std::string& cmd :
       {std::string("ip link set lo up"), "ip tuntap add dev " + tap + " mode tap",
        "ip addr add " + std::string(kHostIp) + "/24 dev " + tap, "ip link set " + tap + " up"}) {
    // fork() from this thread: the child runs in this thread's namespace.
    if (std::system((cmd + " 2>&1").c_str()) != 0) return cmd + ": failed";
  }
  return "";
}

// A TCP listener on kHostIp:kNetPort in the calling thread's namespace.
Fd HostListener() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kNetPort);
  ::inet_pton(AF_INET, kHostIp, &addr.sin_addr);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd.get(), 1), 0) << std::strerror(errno);
  return fd;
}

// The host end of the agent's `net:` check: receives kNetBytes of the guest's stream and checks
// them, sends kNetBytes of the host's stream, waits for the guest to close. The agent retries
// its connect when one attempt times out (a slow, interpreted guest on a loaded host may
// complete the handshake on the host side only): a newer connection replaces one that has not
// delivered a byte. Returns "ok" or what went wrong.
std::string ServeNetCheck(const Fd& listener, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Fd conn;
  std::string got;
  char buf[16384];
  while (got.size() < kNetBytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return conn.valid() ? "received " + std::to_string(got.size()) + " bytes before the deadline"
                          : "the guest never connected";
    }
    pollfd p[2] = {{listener.get(), POLLIN, 0}, {conn.valid() ? conn.get() : -1, POLLIN, 0}};
    if (::poll(p, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000))) <= 0) continue;
    if ((p[0].revents & POLLIN) && got.empty()) {
      conn = Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      continue;
    }
    if (!(p[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = ::recv(conn.get(), buf, std::min(sizeof(buf), kNetBytes - got.size()), MSG_DONTWAIT);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EAGAIN) {
      continue;
    } else if (got.empty()) {
      conn = Fd();  // That attempt was abandoned; the guest tries again.
    } else {
      return "receiving: " + std::string(n == 0 ? "closed" : std::strerror(errno)) + " after " +
             std::to_string(got.size()) + " bytes";
    }
  }
  if (got != PatternBytes(kSeedNetTx, kNetBytes)) return "the guest's bytes differ from its pattern";
  timeval tv{120, 0};
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const std::string reply = PatternBytes(kSeedNetRx, kNetBytes);
  for (size_t off = 0; off < reply.size();) {
    ssize_t n = ::send(conn.get(), reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return std::string("sending: ") + std::strerror(errno);
    off += static_cast<size_t>(n);
  }
  ::shutdown(conn.get(), SHUT_WR);
  while (::recv(conn.get(), buf, sizeof(buf), 0) > 0) {
  }
  return "ok";
}

class LinuxSnapshotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Vcpu::InstallKickHandler(); }

  std::unique_ptr<RunningVm> Start(std::unique_ptr<MicroVm> vm, const std::string& console, Fd fd,
                                   EventFd stop) {
    return std::make_unique<RunningVm>(std::move(vm), console, std::move(fd), std::move(stop));
  }
  MicroVmOptions Options(const std::string& console, Fd& fd, EventFd& stop) {
    fd = std::move(Fd::Open(console, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600)).value();
    stop = std::move(EventFd::Create()).value();
    MicroVmOptions o;
    o.host_kind = DetectHostKind();
    o.console_in = -1;
    o.console_out = fd.get();
    o.stop_event_fd = stop.get();
    return o;
  }
  TempDir dir_;
};

TEST_F(LinuxSnapshotTest, SleepEndsAndVsockNetAndDiskWorkAfterRestore) {
  const std::string kernel = GuestDir() + "/vmlinux", initrd = GuestDir() + "/initramfs.cpio";
  ASSERT_TRUE(std::filesystem::exists(kernel) && std::filesystem::exists(initrd))
      << "guest artifacts missing in " << GuestDir() << ": run resources/build-guest.sh";
  // This thread (and the VMs it builds) in a private namespace with the boot's tap.
  ASSERT_EQ(EnterNamespaceWithTap("hs-tap0"), "") << "network namespace and tap (needs root)";
  const std::string disk = dir_.Write("scratch.img", std::vector<uint8_t>(8 << 20));
  VmResources r;
  // After the snapshot (taken in netwait): TCP to the host, then vsock_hold keeps the guest
  // (and its disk) still until the host connects to port 5002, then blk, then power-off.
  r.boot_source = BootSourceConfig{
      kernel,
      std::string("console=ttyS0 reboot=k panic=-1 ip=") + kGuestIp + "::" + kHostIp +
          ":255.255.255.0::eth0:off hearth_agent.checks=vsock_echo:5000,netwait:20000,net:" + kHostIp +
          ":" + std::to_string(kNetPort) + ":" + std::to_string(kNetBytes) +
          ":600,vsock_hold:5002:600,blk:vda hearth_agent.action=poweroff",
      initrd};
  r.machine.mem_size_mib = 256;
  DriveConfig d;
  d.drive_id = "scratch";
  d.path_on_host = disk;
  r.drives.push_back(d);
  NetworkInterfaceConfig net;
  net.iface_id = "eth0";
  net.host_dev_name = "hs-tap0";
  net.guest_mac = ParseMac(kGuestMac).value();
  r.network_interfaces.push_back(net);
  const std::string uds = dir_.File("v.sock"), clone_uds = dir_.File("clone.sock"),
                    other_uds = dir_.File("other.sock");
  r.vsock = VsockConfig{3, uds, std::nullopt};

  const std::string state = dir_.File("linux.snap"), mem = dir_.File("linux.mem");
  std::string before;
  {
    Fd fd;
    EventFd stop = std::move(EventFd::Create()).value();
    MicroVmOptions o = Options(dir_.File("boot.out"), fd, stop);
    BuildError err{BuildStage::kHost, Error("")};
    auto vm = MicroVm::Create(r, o, &err);
    ASSERT_NE(vm, nullptr) << err.error.message();
    auto running = Start(std::move(vm), dir_.File("boot.out"), std::move(fd), std::move(stop));
    ASSERT_TRUE(WaitForText(*running, "hearth-agent: ready", 240s)) << running->Console();
    std::this_thread::sleep_for(1s);  // Into the 20 s sleep.
    // A connection open at snapshot time: the snapshot's TRANSPORT_RESET closes it.
    Fd open_conn = HostConnect(uds, 5000);
    const std::string ok = ReadUpTo(open_conn, 3, 60s);
    ASSERT_EQ(ok, "OK ") << running->Console();
    (void)ReadUpTo(open_conn, 64, 1s);  // The rest of "OK <port>\n".
    ASSERT_OK(running->Pause());
    before = running->Console();
    ASSERT_EQ(before.find("netwait ms="), std::string::npos) << "the sleep ended before the snapshot";
    if (DetectHostKind() == HostKind::kPvm) {
      // The guest's TSC is the host's there (not restorable): a clone timing itself by it would
      // jump forward by the time the snapshot lay on disk. Hearth has it keep kvm-clock.
      EXPECT_NE(before.find("Switched to clocksource kvm-clock"), std::string::npos) << before;
      EXPECT_EQ(before.find("Switched to clocksource tsc"), std::string::npos) << before;
    }
    ASSERT_OK(running->vm().SaveSnapshot({SnapshotType::kFull, state, mem}));
    EXPECT_EQ(ReadUpTo(open_conn, 1, 5s), "<EOF>") << "the connection outlived the snapshot";
    running->Stop();
  }  // The boot's VM is gone: its tap is free for the first clone.

  // The first clone, on the boot's tap (its name saved in the snapshot).
  Fd listener = HostListener();
  Fd fd;
  EventFd stop = std::move(EventFd::Create()).value();
  MicroVmOptions o = Options(dir_.File("restored.out"), fd, stop);
  LoadSnapshot p;
  p.snapshot_path = state;
  p.backend_path = mem;
  p.resume_vm = true;
  p.vsock_uds_path = clone_uds;
  auto vm = MicroVm::RestoreFromSnapshot(p, o);
  ASSERT_OK(vm);
  auto restored = Start(std::move(vm).value(), dir_.File("restored.out"), std::move(fd), std::move(stop));
  auto net_same_tap = std::async(std::launch::async, [&] { return ServeNetCheck(listener, 400s); });
  {
    // The guest's listener survived the snapshot: a new connection through the override path
    // is accepted and echoes.
    Fd echo = HostConnect(clone_uds, 5000);
    std::string ok = ReadUpTo(echo, 3, 60s);
    EXPECT_EQ(ok, "OK ") << restored->Console();
    std::string line = ok;
    while (!line.empty() && line.back() != '\n' && line.find("<") == std::string::npos) {
      std::string more = ReadUpTo(echo, 1, 5s);
      if (more.empty()) break;
      line += more;
    }
    ASSERT_EQ(::send(echo.get(), "ping", 4, MSG_NOSIGNAL), 4);
    EXPECT_EQ(ReadUpTo(echo, 4, 60s), "ping") << restored->Console();
    // No listener on 5001: the guest resets the request; the host socket closes without OK.
    Fd refused = HostConnect(clone_uds, 5001);
    EXPECT_EQ(ReadUpTo(refused, 3, 60s), "<EOF>");
  }
  // TCP through the same tap after the restore; the agent's view: every byte it got back matched.
  EXPECT_EQ(net_same_tap.get(), "ok") << restored->Console();
  EXPECT_TRUE(WaitForText(*restored, "hearth-agent: net tx=65536 rx=65536 rx=ok", 120s))
      << restored->Console();

  // The second clone, restored now (its guest work does not compete with the first clone's
  // network check), in its own namespace whose tap has another name (network_overrides), on a
  // thread that stays there while it builds the VM.
  struct OtherClone {
    std::string error;
    Fd listener;
    std::unique_ptr<MicroVm> vm;
  };
  Fd other_fd;
  EventFd other_stop = std::move(EventFd::Create()).value();
  MicroVmOptions other_options = Options(dir_.File("other.out"), other_fd, other_stop);
  OtherClone other = std::async(std::launch::async, [&] {
                       OtherClone c;
                       c.error = EnterNamespaceWithTap("hs-tap1");
                       if (!c.error.empty()) return c;
                       c.listener = HostListener();
                       LoadSnapshot lp;
                       lp.snapshot_path = state;
                       lp.backend_path = mem;
                       lp.resume_vm = true;
                       lp.vsock_uds_path = other_uds;
                       lp.network_overrides.push_back({"eth0", "hs-tap1"});
                       auto restored_vm = MicroVm::RestoreFromSnapshot(lp, other_options);
                       if (!restored_vm.ok()) {
                         c.error = restored_vm.error().message();
                       } else {
                         c.vm = std::move(restored_vm).value();
                       }
                       return c;
                     }).get();
  ASSERT_EQ(other.error, "");
  auto other_running = Start(std::move(other.vm), dir_.File("other.out"), std::move(other_fd),
                             std::move(other_stop));
  auto net_other_tap =
      std::async(std::launch::async, [&] { return ServeNetCheck(other.listener, 400s); });

  // Release the first clone's vsock_hold: blk, then power-off (while the second one sleeps).
  {
    Fd hold;
    ASSERT_TRUE(HostConnectWhenListening(clone_uds, 5002, 120s, &hold)) << restored->Console();
  }
  ASSERT_TRUE(restored->WaitForExit(300s)) << restored->Console();
  const std::string after = restored->Console();
  EXPECT_TRUE(restored->PoweredOff()) << restored->OutcomeText() << "\n" << after;
  EXPECT_NE(after.find("hearth-agent: netwait ms=20000"), std::string::npos) << after;
  EXPECT_NE(after.find("hearth-agent: blk vda write=ok read=ok"), std::string::npos) << after;
  EXPECT_NE(after.find("hearth-agent: action poweroff"), std::string::npos) << after;
  EXPECT_EQ(after.find("Linux version"), std::string::npos) << "the guest rebooted:\n" << after;
  EXPECT_EQ(Occurrences(before, "Linux version"), 1u);

  // TCP through the overridden tap, in the other namespace.
  EXPECT_EQ(net_other_tap.get(), "ok") << other_running->Console();
  EXPECT_TRUE(WaitForText(*other_running, "hearth-agent: net tx=65536 rx=65536 rx=ok", 120s))
      << other_running->Console();
  // It stops while it holds, before its blk check could touch the disk both clones share.
  other_running->Stop();
  EXPECT_EQ(other_running->Console().find("hearth-agent: blk"), std::string::npos);
  EXPECT_EQ(other_running->Console().find("Linux version"), std::string::npos);
}

}  // namespace
}  // namespace hearth
