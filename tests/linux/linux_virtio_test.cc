// Boots the bundled Linux guest with virtio-blk disks and a virtio-net tap
// and checks, through the in-kernel agent, the Linux drivers against hearth's
// devices end to end:
//
//  - blk:vdb    1 MiB pattern written, flushed, read back by the guest; the
//               host then finds exactly that pattern in the image file;
//  - blkro:vdc  a read-only disk: the guest's write is refused, reads work,
//               the image file is unchanged;
//  - rootfs     vda (a copy of rootfs.ext4) mounts as ext4 with /sbin/init;
//  - net        the host pings the guest (address from `ip=`), then a TCP
//               listener in the test receives 8 MiB of the guest's pattern,
//               verifies it and sends 8 MiB of its own back, which the guest
//               verifies.
//
// All four run in one boot (on a kvm_pvm host a boot costs 20-60 s). A
// second boot mounts rootfs.ext4 as the root file system from the kernel.
// The network test needs root: it creates a network namespace (unique name
// per process and test) with a tap device, and runs hearth inside it with
// `ip netns exec`.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
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

constexpr size_t kBlkBytes = 1024 * 1024;          // what blk:<disk> writes
constexpr size_t kScratchBytes = 8 * 1024 * 1024;  // vdb
constexpr size_t kReadOnlyBytes = 1024 * 1024;     // vdc
constexpr uint64_t kSeedReadOnly = 0x726561646f6e6c79ull;  // "readonly"
constexpr size_t kNetBytes = 8 * 1024 * 1024;
constexpr int kNetPort = 5201;
// The namespace is private to the test, so the subnet can be fixed.
constexpr const char* kHostIp = "192.168.100.1";
constexpr const char* kGuestIp = "192.168.100.2";
constexpr const char* kTap = "hearth-tap0";
// Jumbo frames on both ends of the link: far fewer packets through the
// guest's (interpreted, on kvm_pvm) network stack.
constexpr int kMtu = 65520;

// ---- Network namespace with a tap ----------------------------------------

// `ip netns add` a namespace with a unique name, a tap with kHostIp/24 in it,
// and `ip netns del` on destruction (which also removes the tap).
class NetNs {
 public:
  NetNs() {
    static std::atomic<int> counter{0};
    name_ = "hearth-lt-" + std::to_string(getpid()) + "-" +
            std::to_string(counter++);
  }
  ~NetNs() {
    if (created_) Ip({"netns", "del", name_});
  }
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  // Returns "" or what failed.
  std::string Create() {
    std::string err = Ip({"netns", "add", name_});
    if (!err.empty()) return err;
    created_ = true;
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{
             {"-n", name_, "link", "set", "lo", "up"},
             {"-n", name_, "tuntap", "add", "dev", kTap, "mode", "tap"},
             {"-n", name_, "addr", "add", std::string(kHostIp) + "/24", "dev",
              kTap},
             {"-n", name_, "link", "set", kTap, "mtu", std::to_string(kMtu)},
             {"-n", name_, "link", "set", kTap, "up"}}) {
      err = Ip(args);
      if (!err.empty()) return err;
    }
    return "";
  }

  const std::string& name() const { return name_; }

  // Moves the calling thread into the namespace; returns "" or the error.
  std::string EnterOnThisThread() const {
    std::string path = "/run/netns/" + name_;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "open " + path + ": " + std::strerror(errno);
    int r = setns(fd, CLONE_NEWNET);
    int saved = errno;
    close(fd);
    if (r != 0) return std::string("setns: ") + std::strerror(saved);
    return "";
  }

 private:
  static std::string Ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = RunProcess(argv, std::chrono::seconds(30));
    if (r.ExitedWith(0)) return "";
    std::string cmd;
    for (const std::string& a : argv) cmd += a + " ";
    return cmd + "failed: " + r.Describe();
  }

  std::string name_;
  bool created_ = false;
};

// ---- ICMP echo (ping) from inside the namespace -----------------------------

uint16_t InetChecksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Sends one echo request to `dst` with sequence `seq` and waits up to
// `timeout` for the matching reply.
bool PingOnce(int fd, const sockaddr_in& dst, uint16_t id, uint16_t seq,
              std::chrono::milliseconds timeout) {
  uint8_t packet[64] = {};
  packet[0] = ICMP_ECHO;
  packet[4] = id >> 8;
  packet[5] = id & 0xff;
  packet[6] = seq >> 8;
  packet[7] = seq & 0xff;
  for (size_t i = 8; i < sizeof(packet); ++i)
    packet[i] = static_cast<uint8_t>(i);
  uint16_t sum = InetChecksum(packet, sizeof(packet));
  packet[2] = sum >> 8;
  packet[3] = sum & 0xff;
  if (sendto(fd, packet, sizeof(packet), 0,
             reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) < 0)
    return false;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - Clock::now())
                             .count());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left > 0 ? left : 0) <= 0) continue;
    uint8_t reply[1500];
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd, reply, sizeof(reply), 0,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 20) continue;
    size_t ihl = (reply[0] & 0x0f) * 4u;
    if (static_cast<size_t>(n) < ihl + 8) continue;
    const uint8_t* icmp = reply + ihl;
    if (from.sin_addr.s_addr == dst.sin_addr.s_addr &&
        icmp[0] == ICMP_ECHOREPLY && ((icmp[4] << 8) | icmp[5]) == id &&
        ((icmp[6] << 8) | icmp[7]) == seq)
      return true;
  }
  return false;
}

// ---- The host side of the network check -------------------------------------

struct HostNetResult {
  std::string error;  // "" when everything on the host side worked
  double seconds_to_first_ping = -1;
  int pings_answered = 0;  // of the 3 after the first answer
  double max_ping_ms = 0;  // slowest of those answers
  size_t received = 0;     // bytes from the guest
  size_t mismatched_words = 0;
  uint64_t received_sum = 0;  // sum of the guest's words
  size_t sent = 0;            // bytes to the guest
};

// Runs in its own thread inside the namespace while hearth runs: pings the
// guest until it answers (or `stop`), pings it 3 more times (30 s each), then
// listens on kHostIp:kNetPort, takes the guest's connection, receives
// kNetBytes of the kSeedNetTx stream, verifies it and sends kNetBytes of the
// kSeedNetRx stream back.
void HostNetSide(const NetNs& ns, const std::atomic<bool>& stop,
                 HostNetResult& out) {
  out.error = ns.EnterOnThisThread();
  if (!out.error.empty()) return;
  const Clock::time_point start = Clock::now();

  sockaddr_in guest{};
  guest.sin_family = AF_INET;
  inet_pton(AF_INET, kGuestIp, &guest.sin_addr);
  int icmp = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (icmp < 0) {
    out.error = std::string("raw ICMP socket: ") + std::strerror(errno);
    return;
  }
  const uint16_t id = static_cast<uint16_t>(getpid());
  uint16_t seq = 0;
  bool up = false;
  while (!stop && !up) {
    // Before the guest answers ARP, sendto fails at once: pace the tries.
    const Clock::time_point next = Clock::now() + std::chrono::seconds(1);
    up = PingOnce(icmp, guest, id, ++seq, std::chrono::milliseconds(1000));
    if (!up) std::this_thread::sleep_until(next);
  }
  if (!up) {
    close(icmp);
    out.error = "the guest never answered a ping";
    return;
  }
  out.seconds_to_first_ping =
      std::chrono::duration<double>(Clock::now() - start).count();
  for (int i = 0; i < 3; ++i) {
    const Clock::time_point sent = Clock::now();
    // 30 s: on kvm_pvm a reply can wait seconds behind the agent's interpreted pattern fill
    // (softirq work past its 2 ms budget goes to ksoftirqd, which waits for the agent's
    // kthread to yield); a lost frame would still miss this.
    if (PingOnce(icmp, guest, id, ++seq, std::chrono::seconds(30))) {
      ++out.pings_answered;
      out.max_ping_ms = std::max(
          out.max_ping_ms,
          std::chrono::duration<double, std::milli>(Clock::now() - sent)
              .count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  close(icmp);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kNetPort);
  inet_pton(AF_INET, kHostIp, &addr.sin_addr);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0) {
    out.error = std::string("bind/listen: ") + std::strerror(errno);
    close(listener);
    return;
  }
  int conn = -1;
  while (!stop && conn < 0) {
    pollfd p{listener, POLLIN, 0};
    if (poll(&p, 1, 500) > 0)
      conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  }
  close(listener);
  if (conn < 0) {
    out.error = "the guest never connected";
    return;
  }
  timeval tv{120, 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

  // Receive and verify word by word; buf holds stream bytes
  // [verified, verified + have).
  std::vector<char> buf(64 * 1024 + 8);
  size_t have = 0, verified = 0;
  std::string expected(64 * 1024 + 8, '\0');
  while (out.received < kNetBytes) {
    size_t want = std::min(kNetBytes - out.received, size_t{64 * 1024});
    ssize_t n = recv(conn, buf.data() + have, want, 0);
    if (n <= 0) {
      out.error =
          "receiving from the guest: " +
          std::string(n == 0 ? "connection closed" : std::strerror(errno));
      break;
    }
    out.received += static_cast<size_t>(n);
    size_t total = have + static_cast<size_t>(n);
    size_t whole = total & ~size_t{7};
    FillPattern(kSeedNetTx, verified, whole, expected.data());
    for (size_t i = 0; i < whole; i += 8) {
      if (std::memcmp(buf.data() + i, expected.data() + i, 8) != 0)
        ++out.mismatched_words;
    }
    out.received_sum += WordSum(std::string_view(buf.data(), whole));
    verified += whole;
    have = total - whole;
    if (have) std::memmove(buf.data(), buf.data() + whole, have);
  }
  if (out.error.empty()) {
    std::string chunk(64 * 1024, '\0');
    while (out.sent < kNetBytes) {
      size_t len = std::min(kNetBytes - out.sent, chunk.size());
      FillPattern(kSeedNetRx, out.sent, len, chunk.data());
      size_t off = 0;
      while (off < len) {
        ssize_t n = send(conn, chunk.data() + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      out.sent += off;
      if (off < len) {
        out.error =
            std::string("sending to the guest: ") + std::strerror(errno);
        break;
      }
    }
    // Wait for the guest to close its end (it has read everything then).
    shutdown(conn, SHUT_WR);
    char drain[256];
    while (recv(conn, drain, sizeof(drain), 0) > 0) {
    }
  }
  close(conn);
}

// ---- Tests ------------------------------------------------------------------

// One boot: blk, blkro, rootfs and net checks, then power-off.
TEST(LinuxGuestVirtio, BlockReadOnlyRootfsAndNetwork) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  auto rootfs = GuestArtifact("rootfs.ext4");
  ASSERT_TRUE(kernel && rootfs);
  TempDir dir;
  const std::string root_image = dir.Path("rootfs.ext4");
  ASSERT_TRUE(CopyFile(*rootfs, root_image));
  const std::string scratch =
      dir.Write("scratch.img", std::string(kScratchBytes, '\0'));
  const std::string ro_before = Pattern(kSeedReadOnly, kReadOnlyBytes);
  const std::string ro_image = dir.Write("ro.img", ro_before, 0444);

  NetNs ns;
  const std::string ns_error = ns.Create();
  ASSERT_EQ(ns_error, "") << "setting up the network namespace (needs root)";

  VmConfigJson config(*kernel);
  config.Vcpus(1).MemMib(256).BootArgs(
      std::string(kBaseBootArgs) + " ip=" + kGuestIp + "::" + kHostIp +
      ":255.255.255.0::eth0:off hearth_agent.checks=blk:vdb,blkro:vdc,rootfs,"
      "mtu:eth0:" +
      std::to_string(kMtu) + ",net:" + kHostIp + ":" +
      std::to_string(kNetPort) + ":" + std::to_string(kNetBytes) +
      ":300 hearth_agent.action=poweroff");
  const std::string json =
      LinuxConfig(config,
                  {{"rootfs", root_image, /*root=*/true, /*read_only=*/false},
                   {"scratch", scratch, false, false},
                   {"ro", ro_image, false, /*read_only=*/true}},
                  {{"eth0", kTap, "06:00:c0:a8:64:02"}});

  std::atomic<bool> stop{false};
  HostNetResult host;
  std::thread host_thread(HostNetSide, std::cref(ns), std::cref(stop),
                          std::ref(host));
  ProcessResult r = BootLinux(dir, json, "boot", {"--level", "Info"},
                              {"ip", "netns", "exec", ns.name()});
  stop = true;
  host_thread.join();

  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("hearth-agent: ready"));

  // blk: the guest read its pattern back; the file has it at offset 0 and
  // zeroes after it.
  const std::string blk = LineStartingWith(r, "hearth-agent: blk vdb ");
  const std::string blk_pattern = Pattern(kSeedBlk, kBlkBytes);
  EXPECT_EQ(Field(blk, "write"), "ok") << blk;
  EXPECT_EQ(Field(blk, "read"), "ok") << blk;
  EXPECT_EQ(Field(blk, "bytes"), std::to_string(kBlkBytes)) << blk;
  EXPECT_EQ(Field(blk, "sum"), PatternSumHex(blk_pattern)) << blk;
  const std::string scratch_after = ReadFileBytes(scratch);
  ASSERT_EQ(scratch_after.size(), kScratchBytes);
  EXPECT_TRUE(scratch_after.compare(0, kBlkBytes, blk_pattern) == 0)
      << "the scratch image does not hold the guest's pattern at offset 0";
  EXPECT_EQ(scratch_after.find_first_not_of('\0', kBlkBytes), std::string::npos)
      << "the guest wrote past its 1 MiB";

  // blkro: the kernel knows the disk is read-only, the device refuses the
  // write bio, reads work, the file is unchanged.
  const std::string ro = LineStartingWith(r, "hearth-agent: blkro vdc ");
  EXPECT_EQ(Field(ro, "write"), "refused") << ro;
  EXPECT_EQ(Field(ro, "err"), "-5") << ro;  // -EIO: VIRTIO_BLK_S_IOERR
  EXPECT_EQ(Field(ro, "disk_ro"), "1") << ro;
  EXPECT_EQ(Field(ro, "read"), "ok") << ro;
  EXPECT_EQ(Field(ro, "sum"), PatternSumHex(ro_before.substr(0, 4096))) << ro;
  EXPECT_EQ(Field(ro, "reread"), "same") << ro;
  EXPECT_TRUE(ReadFileBytes(ro_image) == ro_before)
      << "the read-only image changed";

  // rootfs: vda is ext4 with an executable /sbin/init.
  const std::string root = LineStartingWith(r, "hearth-agent: rootfs vda ");
  EXPECT_THAT(root, HasSubstr("hearth-agent: rootfs vda ext4 init=present"));

  // net: pings answered, both streams intact in both directions.
  EXPECT_EQ(host.error, "") << r.Describe();
  EXPECT_EQ(host.pings_answered, 3);
  EXPECT_EQ(host.received, kNetBytes);
  EXPECT_EQ(host.mismatched_words, 0u);
  EXPECT_EQ(host.sent, kNetBytes);
  const std::string net = LineStartingWith(r, "hearth-agent: net ");
  EXPECT_THAT(net, HasSubstr(" rx=ok ")) << net;
  EXPECT_EQ(Field(net, "tx"), std::to_string(kNetBytes)) << net;
  EXPECT_EQ(Field(net, "rx"), std::to_string(kNetBytes)) << net;
  EXPECT_EQ(Field(net, "tx_sum"), Hex64(host.received_sum)) << net;
  EXPECT_EQ(Field(net, "tx_sum"), PatternSumHex(Pattern(kSeedNetTx, kNetBytes)))
      << net;
  EXPECT_EQ(Field(net, "rx_sum"), PatternSumHex(Pattern(kSeedNetRx, kNetBytes)))
      << net;

  std::printf(
      "[  figures ] blk: write %s MB/s (%s us incl. flush), read %s MB/s "
      "(%s us) for 1 MiB; net: guest->host %s Mbit/s, host->guest %s Mbit/s "
      "for 8 MiB; first ping answered %.1f s after start, ping rtt <= %.1f "
      "ms; guest pattern fill %s us per MiB\n",
      Field(blk, "write_mbs").c_str(), Field(blk, "write_us").c_str(),
      Field(blk, "read_mbs").c_str(), Field(blk, "read_us").c_str(),
      Field(net, "tx_mbps").c_str(), Field(net, "rx_mbps").c_str(),
      host.seconds_to_first_ping, host.max_ping_ms,
      Field(blk, "fill_us").c_str());
  std::printf("[  agent   ] %s\n[  agent   ] %s\n", blk.c_str(), net.c_str());
  ::testing::Test::RecordProperty("blk_write_mbs", Field(blk, "write_mbs"));
  ::testing::Test::RecordProperty("blk_read_mbs", Field(blk, "read_mbs"));
  ::testing::Test::RecordProperty("net_tx_mbps", Field(net, "tx_mbps"));
  ::testing::Test::RecordProperty("net_rx_mbps", Field(net, "rx_mbps"));
}

// rootfs.ext4 as the root device, no initramfs: the kernel mounts it and
// starts /sbin/init. Where user space runs, the init runs fio and iperf3
// from the image and powers off; on a kvm_pvm host init dies at its first
// system call and the panic ends hearth with status 3.
TEST(LinuxGuestVirtio, RootfsExt4AsRootDevice) {
  RecordHostKind();
  auto kernel = GuestArtifact("vmlinux");
  auto rootfs = GuestArtifact("rootfs.ext4");
  ASSERT_TRUE(kernel && rootfs);
  const std::string& kind = HostKind();
  ASSERT_FALSE(kind.empty());
  TempDir dir;
  const std::string root_image = dir.Path("rootfs.ext4");
  ASSERT_TRUE(CopyFile(*rootfs, root_image));

  VmConfigJson config(*kernel);
  config.Vcpus(1).MemMib(128).BootArgs(
      std::string(kBaseBootArgs) +
      " hearth_agent.action=none hearth_init.cmd=fio+--version%3B+iperf3+"
      "--version hearth_init.then=poweroff");
  ProcessResult r = BootLinux(
      dir,
      LinuxConfig(config, {{"rootfs", root_image, /*root=*/true, false}}, {}),
      "boot");
  EXPECT_THAT(r.out, HasSubstr("VFS: Mounted root (ext4 filesystem)"))
      << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("Run /sbin/init as init process"));
  if (kind == "hardware") {
    ::testing::Test::RecordProperty("userspace", "ran");
    ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr("hearth-init: userspace up"));
    EXPECT_THAT(r.out, HasSubstr("fio-"));
    EXPECT_THAT(r.out, HasSubstr("iperf 3"));
    EXPECT_THAT(r.out, HasSubstr("hearth-init: cmd exit=0"));
  } else {
    std::printf(
        "[   note   ] host kind pvm: guest user space cannot make system "
        "calls here, so /sbin/init cannot run; checked instead that the "
        "kernel mounted the ext4 root and started /sbin/init, and that "
        "init's death ends hearth with status 3\n");
    ::testing::Test::RecordProperty("userspace",
                                    "cannot run on a pvm host: checked that "
                                    "the kernel started /sbin/init");
    EXPECT_TRUE(r.ExitedWith(kExitGuestPanic)) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr("Attempted to kill init"));
  }
}

}  // namespace
}  // namespace hearth::testing
