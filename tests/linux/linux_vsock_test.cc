// Boots the bundled Linux guest once with a virtio-vsock device and checks Linux's real
// virtio-vsock driver against hearth's device and its Firecracker-style UNIX-socket host side.
// The guest side is the in-kernel agent (guest user space cannot run on kvm_pvm hosts):
//
//  - vsock_echo:5000         a guest echo server (kthreads) on port 5000;
//  - vsock_connect:6000:...  guest -> host: 1 MiB each way with a host listener at
//                            <uds_path>_6000, both streams verified;
//  - vsock_connect:6001:...  guest -> host with nothing listening: the guest gets a reset;
//  - vsock_connect:6002:...  guest -> host, the host reads 64 KiB and goes away while the
//                            guest still sends 4 MiB: the guest's send fails, nothing hangs;
//  - vsock_connect:6003:...  the guest reads 64 KiB and closes while the host keeps writing:
//                            the host's write fails;
//  - vsock_hold:5999         the guest waits for the host's "done" connection, prints the echo
//                            server's counters and powers off.
//
// Meanwhile the host side (a thread of this test) talks to the echo server through
// `CONNECT 5000\n`: an 8 MiB round trip with checksums, 100 concurrent connections each with
// its own data, a port with no guest listener, a host client that disappears mid-transfer,
// and a final echo to show the VMM still serves. The VM runs with `hearth --no-api
// --config-file` and must exit 0.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/linux/linux_guest.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kGuestCid = 3;
constexpr uint32_t kEchoPort = 5000;
constexpr uint32_t kHoldPort = 5999;
constexpr size_t kRoundTripBytes = 8 * 1024 * 1024;
constexpr size_t kGuestConnectBytes = 1024 * 1024;
constexpr size_t kConcurrent = 100;
constexpr size_t kConcurrentBytes = 4096;
constexpr auto kHostDeadline = std::chrono::seconds(500);

int UnixSocket() { return ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); }

sockaddr_un Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

int Listen(const std::string& path) {
  int fd = UnixSocket();
  sockaddr_un addr = Address(path);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits until `fd` is readable (or writable) or `deadline`; false on timeout.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (n > 0) return true;
  }
}

// Reads one "\n"-terminated line byte by byte (so stream bytes stay in the socket); "" on
// EOF, error or timeout.
std::string ReadLine(int fd, Clock::time_point deadline) {
  std::string line;
  while (line.size() < 64) {
    if (!WaitFd(fd, POLLIN, deadline)) return "";
    char c;
    if (::recv(fd, &c, 1, 0) != 1) return "";
    line.push_back(c);
    if (c == '\n') return line;
  }
  return "";
}

// Connects to uds_path and asks for guest port `port`; the socket or -1 (refused: the device
// closed it without OK).
int HostConnect(const std::string& uds, uint32_t port, Clock::time_point deadline,
                std::string* ok_line = nullptr) {
  int fd = UnixSocket();
  sockaddr_un addr = Address(uds);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  std::string req = "CONNECT " + std::to_string(port) + "\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string line = ReadLine(fd, deadline);
  if (ok_line) *ok_line = line;
  if (line.rfind("OK ", 0) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Writes `out` and reads as many bytes back at the same time (the echo may not buffer it
// all): returns what came back.
std::string Exchange(int fd, const std::string& out, Clock::time_point deadline,
                     std::string* error) {
  std::string in;
  size_t sent = 0;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::vector<char> buf(256 * 1024);
  while (in.size() < out.size()) {
    if (Clock::now() > deadline) {
      *error = "timed out after " + std::to_string(in.size()) + " of " +
               std::to_string(out.size()) + " bytes back";
      break;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sent < out.size() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    if (sent < out.size() && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, out.data() + sent, std::min<size_t>(out.size() - sent, 65536),
                         MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n == 0) {
        *error = "EOF after " + std::to_string(in.size()) + " bytes back";
        break;
      }
      if (n > 0) in.append(buf.data(), static_cast<size_t>(n));
    }
  }
  return in;
}

struct HostResult {
  std::string error;  // The first thing that went wrong.
  double echo_ready_s = 0;
  double round_trip_s = 0;
  std::string round_trip_sum;
  bool round_trip_equal = false;
  size_t concurrent_ok = 0;
  std::string no_listener_reply = "?";
  bool disappear_done = false;
  bool echo_after = false;
  // Guest-initiated.
  size_t g6000_received = 0;
  std::string g6000_sum;
  bool g6000_sent_reply = false;
  size_t g6002_received = 0;
  size_t g6003_written = 0;
  std::string g6003_error;
  bool hold_done = false;
};

void Fail(HostResult& r, const std::string& what) {
  if (r.error.empty()) r.error = what;
}

// The host listeners for the guest's connects (one thread: they run one after another).
void GuestInitiatedSide(const std::string& uds, int l6000, int l6002, int l6003,
                        Clock::time_point deadline, HostResult& r) {
  // 6000: 1 MiB in, verified; 1 MiB of the RX stream out.
  if (WaitFd(l6000, POLLIN, deadline)) {
    int c = ::accept4(l6000, nullptr, nullptr, SOCK_CLOEXEC);
    std::string in;
    std::vector<char> buf(65536);
    while (in.size() < kGuestConnectBytes && WaitFd(c, POLLIN, deadline)) {
      ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      in.append(buf.data(), static_cast<size_t>(n));
    }
    r.g6000_received = in.size();
    r.g6000_sum = PatternSumHex(in.substr(0, in.size() & ~size_t{7}));
    std::string out = Pattern(kSeedNetRx, kGuestConnectBytes);
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    r.g6000_sent_reply = sent == out.size();
    // Wait for the guest to close.
    while (WaitFd(c, POLLIN, deadline) && ::recv(c, buf.data(), buf.size(), 0) > 0) {
    }
    ::close(c);
  } else {
    Fail(r, "the guest never connected to " + uds + "_6000");
  }
  // 6002: read 64 KiB of the guest's 4 MiB, then go away.
  if (WaitFd(l6002, POLLIN, deadline)) {
    int c = ::accept4(l6002, nullptr, nullptr, SOCK_CLOEXEC);
    std::vector<char> buf(65536);
    size_t got = 0;
    while (got < 65536 && WaitFd(c, POLLIN, deadline)) {
      ssize_t n = ::recv(c, buf.data(), 65536 - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    r.g6002_received = got;
    ::close(c);
  } else {
    Fail(r, "the guest never connected to " + uds + "_6002");
  }
  // 6003: write until the guest's close makes the write fail.
  if (WaitFd(l6003, POLLIN, deadline)) {
    int c = ::accept4(l6003, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    std::string chunk = Pattern(kSeedNetRx, 65536);
    size_t written = 0;
    for (;;) {
      if (!WaitFd(c, POLLOUT, deadline)) {
        r.g6003_error = "timeout";
        break;
      }
      // Keep the stream a valid pattern: offsets continue.
      std::string piece(65536, '\0');
      FillPattern(kSeedNetRx, written & ~size_t{7}, piece.size(), piece.data());
      size_t off = written % 8;
      ssize_t n = ::send(c, piece.data() + off, piece.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) continue;
      if (n <= 0) {
        r.g6003_error = n < 0 ? std::strerror(errno) : "zero write";
        break;
      }
      written += static_cast<size_t>(n);
      if (written > (256u << 20)) {
        r.g6003_error = "no error after 256 MiB";
        break;
      }
    }
    r.g6003_written = written;
    ::close(c);
  } else {
    Fail(r, "the guest never connected to " + uds + "_6003");
  }
}

void HostInitiatedSide(const std::string& uds, Clock::time_point deadline, HostResult& r) {
  const auto start = Clock::now();
  // The echo server comes up early in the agent's checks; retry until it answers.
  int fd = -1;
  while (fd < 0 && Clock::now() < deadline) {
    fd = HostConnect(uds, kEchoPort, deadline);
    if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (fd < 0) return Fail(r, "the guest echo server never accepted CONNECT 5000");
  r.echo_ready_s = std::chrono::duration<double>(Clock::now() - start).count();

  // 8 MiB round trip.
  {
    const std::string out = Pattern(kSeedNetTx, kRoundTripBytes);
    std::string error;
    const auto t0 = Clock::now();
    std::string in = Exchange(fd, out, deadline, &error);
    r.round_trip_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!error.empty()) Fail(r, "8 MiB round trip: " + error);
    r.round_trip_sum = PatternSumHex(in.substr(0, in.size() & ~size_t{7}));
    r.round_trip_equal = in == out;
    ::close(fd);
  }

  // 100 concurrent connections, each with its own data.
  {
    std::vector<int> fds;
    for (size_t i = 0; i < kConcurrent; ++i) {
      int c = UnixSocket();
      sockaddr_un addr = Address(uds);
      if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(c);
        continue;
      }
      std::string req = "CONNECT " + std::to_string(kEchoPort) + "\n";
      (void)!::send(c, req.data(), req.size(), MSG_NOSIGNAL);
      fds.push_back(c);
    }
    std::vector<std::string> outs(fds.size()), ins(fds.size());
    std::vector<bool> ok(fds.size(), false);
    for (size_t i = 0; i < fds.size(); ++i) {
      if (ReadLine(fds[i], deadline).rfind("OK ", 0) != 0) continue;
      outs[i] = Pattern(kSeedNetRx + 1 + i, kConcurrentBytes);
      (void)!::send(fds[i], outs[i].data(), outs[i].size(), MSG_NOSIGNAL);
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (outs[i].empty()) continue;
      std::vector<char> buf(kConcurrentBytes);
      while (ins[i].size() < kConcurrentBytes && WaitFd(fds[i], POLLIN, deadline)) {
        ssize_t n = ::recv(fds[i], buf.data(), buf.size(), 0);
        if (n <= 0) break;
        ins[i].append(buf.data(), static_cast<size_t>(n));
      }
      if (ins[i] == outs[i]) ++r.concurrent_ok;
    }
    for (int c : fds) ::close(c);
  }

  // A port nothing listens on: the host socket closes without OK.
  {
    std::string line;
    int c = HostConnect(uds, 7777, deadline, &line);
    r.no_listener_reply = line.empty() ? "closed" : line;
    if (c >= 0) ::close(c);
  }

  // The host disappears mid-transfer: write 1 MiB without reading, close.
  {
    int c = HostConnect(uds, kEchoPort, deadline);
    if (c >= 0) {
      ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
      std::string out = Pattern(kSeedNetTx, 1024 * 1024);
      size_t sent = 0;
      for (int i = 0; i < 50 && sent < out.size(); ++i) {
        ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<size_t>(n);
        if (n < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ::close(c);
      r.disappear_done = true;
    } else {
      Fail(r, "CONNECT for the disappearing client was refused");
    }
  }

  // Still serving.
  {
    int c = HostConnect(uds, kEchoPort, deadline);
    if (c >= 0) {
      std::string error;
      std::string out = Pattern(kSeedNetTx + 7, 65536);
      r.echo_after = Exchange(c, out, deadline, &error) == out;
      ::close(c);
    }
  }

  // Done: the guest's hold check accepts once its guest-initiated checks are through.
  while (Clock::now() < deadline) {
    int c = HostConnect(uds, kHoldPort, deadline);
    if (c >= 0) {
      ::close(c);
      r.hold_done = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  Fail(r, "the guest's hold listener never accepted");
}

TEST(LinuxGuestVsock, EchoConnectsResetsAndConcurrency) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  ASSERT_TRUE(kernel);
  TempDir dir;
  const std::string uds = dir.Path("v.sock");
  int l6000 = Listen(uds + "_6000");
  int l6002 = Listen(uds + "_6002");
  int l6003 = Listen(uds + "_6003");
  ASSERT_GE(l6000, 0);
  ASSERT_GE(l6002, 0);
  ASSERT_GE(l6003, 0);

  VmConfigJson config(*kernel);
  config.Vcpus(1).MemMib(256).BootArgs(
      std::string(kBaseBootArgs) + " hearth_agent.checks=vsock_echo:" +
      std::to_string(kEchoPort) + ",vsock_connect:6000:" + std::to_string(kGuestConnectBytes) +
      ":" + std::to_string(kGuestConnectBytes) +
      ",vsock_connect:6001:8:8,vsock_connect:6002:4194304:0,vsock_connect:6003:0:65536,"
      "vsock_hold:" + std::to_string(kHoldPort) + ":480 hearth_agent.action=poweroff");
  config.SetRaw("", "vsock",
                "{\"guest_cid\": " + std::to_string(kGuestCid) + ", \"uds_path\": \"" + uds +
                    "\"}");
  const std::string json = LinuxConfig(config, {}, {});

  const auto deadline = Clock::now() + kHostDeadline;
  HostResult host;
  std::thread guest_side(GuestInitiatedSide, std::cref(uds), l6000, l6002, l6003, deadline,
                         std::ref(host));
  std::thread host_side(HostInitiatedSide, std::cref(uds), deadline, std::ref(host));
  ProcessResult r = BootLinux(dir, json, "boot", {"--level", "Info"});
  host_side.join();
  guest_side.join();
  ::close(l6000);
  ::close(l6002);
  ::close(l6003);

  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(host.error, "") << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hearth-agent: vsock_echo port=5000 listen=ok"));

  // Host -> guest through CONNECT.
  EXPECT_TRUE(host.round_trip_equal);
  EXPECT_EQ(host.round_trip_sum, PatternSumHex(Pattern(kSeedNetTx, kRoundTripBytes)));
  EXPECT_EQ(host.concurrent_ok, kConcurrent);
  EXPECT_EQ(host.no_listener_reply, "closed");
  EXPECT_TRUE(host.disappear_done);
  EXPECT_TRUE(host.echo_after) << "the echo server stopped answering";
  EXPECT_TRUE(host.hold_done);

  // Guest -> host.
  const std::string c6000 = LineStartingWith(r, "hearth-agent: vsock_connect port=6000 ");
  EXPECT_EQ(Field(c6000, "connect"), "ok") << c6000;
  EXPECT_EQ(Field(c6000, "send"), "ok") << c6000;
  EXPECT_EQ(Field(c6000, "recv"), "ok") << c6000;
  EXPECT_EQ(Field(c6000, "tx_sum"), host.g6000_sum) << c6000;
  EXPECT_EQ(Field(c6000, "tx_sum"), PatternSumHex(Pattern(kSeedNetTx, kGuestConnectBytes)));
  EXPECT_EQ(Field(c6000, "rx_sum"), PatternSumHex(Pattern(kSeedNetRx, kGuestConnectBytes)));
  EXPECT_EQ(host.g6000_received, kGuestConnectBytes);
  EXPECT_TRUE(host.g6000_sent_reply);

  const std::string c6001 = LineStartingWith(r, "hearth-agent: vsock_connect port=6001 ");
  EXPECT_EQ(Field(c6001, "connect"), "error:-104") << c6001;  // ECONNRESET

  const std::string c6002 = LineStartingWith(r, "hearth-agent: vsock_connect port=6002 ");
  EXPECT_EQ(Field(c6002, "connect"), "ok") << c6002;
  EXPECT_THAT(Field(c6002, "send"), HasSubstr("error:")) << c6002;
  EXPECT_EQ(host.g6002_received, 65536u);

  const std::string c6003 = LineStartingWith(r, "hearth-agent: vsock_connect port=6003 ");
  EXPECT_EQ(Field(c6003, "recv"), "ok") << c6003;
  EXPECT_EQ(Field(c6003, "got"), "65536") << c6003;
  EXPECT_FALSE(host.g6003_error.empty());
  EXPECT_THAT(host.g6003_error, ::testing::AnyOf(HasSubstr("Broken pipe"),
                                                 HasSubstr("Connection reset")))
      << "host wrote " << host.g6003_written << " bytes";

  // The echo server: every connection served, none left behind.
  const std::string hold = LineStartingWith(r, "hearth-agent: vsock_hold ");
  EXPECT_EQ(Field(hold, "accept"), "0") << hold;
  EXPECT_GE(std::stoi(Field(hold, "echo_conns").empty() ? "0" : Field(hold, "echo_conns")),
            static_cast<int>(kConcurrent) + 3)
      << hold;

  std::printf(
      "[  figures ] vsock: echo ready %.1f s after start; 8 MiB echo round trip %.1f s "
      "(%.2f Mbit/s each way)\n[  agent   ] %s\n[  agent   ] %s\n",
      host.echo_ready_s, host.round_trip_s,
      host.round_trip_s > 0 ? kRoundTripBytes * 8 / host.round_trip_s / 1e6 : 0.0,
      c6000.c_str(), hold.c_str());
  ::testing::Test::RecordProperty("vsock_echo_8mib_round_trip_s",
                                  std::to_string(host.round_trip_s));
}

}  // namespace
}  // namespace hearth::testing
