// The device on a real tap, in a network namespace the test makes and removes: a frame the guest
// sends shows up on an AF_PACKET socket bound to the tap, and a frame sent on that socket lands
// in the guest's RX buffers. Needs /dev/net/tun and root (as in CI).
#include "virtio/net/tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <fstream>
#include <sstream>

#include "base/log.h"

#include "tests/virtio_support/virtio_driver.h"
#include "virtio/net/net.h"

namespace hearth {
namespace {

using testing::VirtioDriver;

constexpr uint16_t kEtherType = 0x88b5;  // IEEE local experimental.
constexpr MacAddress kGuestMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr MacAddress kHostMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

class NullInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t) override {}
  void SetNeedsReset() override {}
};

int Shell(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::vector<uint8_t> EthernetFrame(const MacAddress& dst, const MacAddress& src,
                                   const std::string& text) {
  std::vector<uint8_t> f(dst.begin(), dst.end());
  f.insert(f.end(), src.begin(), src.end());
  f.push_back(kEtherType >> 8);
  f.push_back(kEtherType & 0xff);
  f.insert(f.end(), text.begin(), text.end());
  f.resize(std::max<size_t>(f.size(), 60), 0);
  return f;
}

class NetNamespace {
 public:
  NetNamespace() : name_("hearth-net-" + std::to_string(::getpid())) {
    Shell("ip netns del " + name_);
    ok_ = Shell("ip netns add " + name_) == 0;
    if (ok_) {
      // No IPv6 chatter (router solicitations, MLD) on the tap.
      Shell("ip netns exec " + name_ + " sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
      Shell("ip netns exec " + name_ + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
    }
  }
  ~NetNamespace() {
    if (ok_) Shell("ip netns del " + name_);
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  // Moves the calling thread into the namespace.
  bool Enter() const {
    int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool entered = ::setns(fd, CLONE_NEWNET) == 0;
    ::close(fd);
    return entered;
  }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST(Tap, ValidatesNames) {
  EXPECT_TRUE(Tap::ValidateName("tap0").ok());
  EXPECT_EQ(Tap::ValidateName("").error().message(), "tap name is empty");
  EXPECT_EQ(Tap::ValidateName("x/y").error().message(),
            "tap name 'x/y' contains '/', whitespace or NUL");
  EXPECT_EQ(Tap::ValidateName("a b").error().message(),
            "tap name 'a b' contains '/', whitespace or NUL");
  EXPECT_EQ(Tap::ValidateName("..").error().message(), "tap name '..' is not valid");
  auto open = Tap::Open(std::string(16, 't'));
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.error().message(), "tap name 'tttttttttttttttt' is longer than 15 characters");
}

TEST(Tap, FramesCrossARealTap) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/net/tun is missing";
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add failed (the test needs root)";

  // Everything that depends on the namespace runs on a thread that entered it.
  std::thread worker([&] {
    ASSERT_TRUE(ns.Enter());

    // An existing interface that is not a tap: the error names the ioctl and the interface.
    auto lo = Tap::Open("lo");
    ASSERT_FALSE(lo.ok());
    EXPECT_EQ(lo.error().message(), "TUNSETIFF lo: Invalid argument");

    auto created = Net::Create(NetOptions{"eth0", "hnt0", kGuestMac, {}, {}});
    ASSERT_TRUE(created.ok()) << created.error().message();
    std::unique_ptr<Net> net = std::move(created).value();
    // Any kernel since 2.6.27 takes checksum and TSO offloads on a tap.
    EXPECT_TRUE(net->device_features() & kVirtioNetFGuestTso4);
    ASSERT_EQ(Shell("ip -n " + ns.name() + " link set hnt0 up"), 0);

    int raw = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ASSERT_GE(raw, 0);
    Fd raw_fd(raw);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(::if_nametoindex("hnt0"));
    ASSERT_GT(sll.sll_ifindex, 0);
    ASSERT_EQ(::bind(raw, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)), 0);

    auto memory = GuestMemory::Create({{0, 4 << 20}});
    ASSERT_TRUE(memory.ok());
    VirtioDriver rx(*memory, 0x0, 256, 0x100000);
    VirtioDriver tx(*memory, 0x10000, 256, 0x200000);
    std::vector<Queue> queues;
    queues.emplace_back(256);
    queues.emplace_back(256);
    rx.Configure(queues[kNetRxQueue]);
    tx.Configure(queues[kNetTxQueue]);
    const uint64_t acked = kVirtioFVersion1 | kVirtioNetFMac | kVirtioNetFMrgRxbuf |
                           kVirtioNetFGuestCsum | kVirtioNetFGuestTso4 | kVirtioNetFCsum;
    Status activated = net->Activate({&*memory, &queues, std::make_shared<NullInterrupt>(), acked});
    ASSERT_TRUE(activated.ok()) << activated.error().message();

    // Guest to host.
    auto out = EthernetFrame({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kGuestMac, "hearth tx");
    std::vector<uint8_t> with_hdr(kVirtioNetHdrSize, 0);
    with_hdr.insert(with_hdr.end(), out.begin(), out.end());
    tx.AddChain({{tx.AllocWith(with_hdr), static_cast<uint32_t>(with_hdr.size())}});
    net->ProcessQueue(kNetTxQueue);
    EXPECT_EQ(tx.used_idx(), 1);
    EXPECT_EQ(net->metrics().tx_frames, 1u);
    EXPECT_EQ(net->metrics().tx_errors, 0u);
    bool seen = false;
    for (int tries = 0; tries < 20 && !seen; ++tries) {
      pollfd p{raw, POLLIN, 0};
      if (::poll(&p, 1, 2000) != 1) break;
      std::vector<uint8_t> buf(2048);
      ssize_t n = ::recv(raw, buf.data(), buf.size(), 0);
      ASSERT_GT(n, 0);
      buf.resize(static_cast<size_t>(n));
      seen = buf == out;
    }
    EXPECT_TRUE(seen) << "the guest's frame did not reach the host side of the tap";

    // Host to guest: post buffers, send on the tap's host side, wait for the tap fd.
    std::vector<uint64_t> bufs;
    for (int i = 0; i < 4; ++i) {
      bufs.push_back(rx.Alloc(2048));
      rx.AddChain({{bufs.back(), 2048, true}});
    }
    net->ProcessQueue(kNetRxQueue);
    auto in = EthernetFrame(kGuestMac, kHostMac, "hearth rx");
    ASSERT_EQ(::send(raw, in.data(), in.size(), 0), static_cast<ssize_t>(in.size()));
    bool delivered = false;
    for (int tries = 0; tries < 20 && !delivered; ++tries) {
      pollfd p{net->backend().fd(), POLLIN, 0};
      if (::poll(&p, 1, 2000) != 1) break;
      uint16_t before = rx.used_idx();
      net->OnEvent(net->backend().fd(), EPOLLIN);
      for (uint16_t i = before; i != rx.used_idx(); ++i) {
        VirtqUsedElem e = rx.used_elem(i);
        uint64_t addr = bufs[e.id % bufs.size()];
        auto got = rx.ReadBytes(addr, e.len);
        if (e.len == kVirtioNetHdrSize + in.size() &&
            std::equal(in.begin(), in.end(), got.begin() + kVirtioNetHdrSize)) {
          delivered = true;
          EXPECT_EQ(got[offsetof(VirtioNetHdr, num_buffers)], 1);
        }
      }
    }
    EXPECT_TRUE(delivered) << "the host's frame did not reach the guest's buffers";
    EXPECT_EQ(net->metrics().rx_dropped, 0u);
  });
  worker.join();
}

// Fault injection: the tap is deleted (`ip link del`) under an active device. The guest's frames
// are dropped and their chains returned (counted as TX errors, one warning in the log), a read
// error is counted, and the tap fd does not keep the VMM's edge-triggered epoll loop busy.
TEST(Tap, DeletedUnderAnActiveDeviceDropsFramesWithoutSpinning) {
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/net/tun is missing";
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << "ip netns add failed (the test needs root)";
  char log_tmpl[] = "/tmp/hearth-tap-log-XXXXXX";
  int log_fd = ::mkstemp(log_tmpl);
  ASSERT_GE(log_fd, 0);
  ::close(log_fd);
  const std::string log_path = log_tmpl;
  ASSERT_TRUE(SetLogPath(log_path).ok());

  std::thread worker([&] {
    ASSERT_TRUE(ns.Enter());
    auto created = Net::Create(NetOptions{"eth0", "hnt1", kGuestMac, {}, {}});
    ASSERT_TRUE(created.ok()) << created.error().message();
    std::unique_ptr<Net> net = std::move(created).value();
    ASSERT_EQ(Shell("ip -n " + ns.name() + " link set hnt1 up"), 0);

    auto memory = GuestMemory::Create({{0, 4 << 20}});
    ASSERT_TRUE(memory.ok());
    VirtioDriver rx(*memory, 0x0, 256, 0x100000);
    VirtioDriver tx(*memory, 0x10000, 256, 0x200000);
    std::vector<Queue> queues;
    queues.emplace_back(256);
    queues.emplace_back(256);
    rx.Configure(queues[kNetRxQueue]);
    tx.Configure(queues[kNetTxQueue]);
    const uint64_t acked = kVirtioFVersion1 | kVirtioNetFMac | kVirtioNetFMrgRxbuf;
    ASSERT_TRUE(net->Activate({&*memory, &queues, std::make_shared<NullInterrupt>(), acked}).ok());
    for (int i = 0; i < 4; ++i) rx.AddChain({{rx.Alloc(2048), 2048, true}});
    net->ProcessQueue(kNetRxQueue);

    // The VMM loop's view of the tap fd (net.cc registers it edge-triggered).
    Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(epoll.valid());
    const int tap_fd = net->backend().fd();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.fd = tap_fd;
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, tap_fd, &ev), 0);
    epoll_event got[4];
    while (::epoll_wait(epoll.get(), got, 4, 100) > 0) net->OnEvent(tap_fd, got[0].events);

    ASSERT_EQ(Shell("ip -n " + ns.name() + " link del hnt1"), 0);
    // A second: the loop wakes for the deletion's edge, handles it, and then sleeps.
    int wakeups = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < until) {
      if (::epoll_wait(epoll.get(), got, 4, 100) > 0) {
        ++wakeups;
        net->OnEvent(tap_fd, got[0].events);
      }
    }
    EXPECT_LE(wakeups, 3) << "the dead tap keeps waking the event loop";

    // The guest sends: the frame is dropped, its chain comes back, the error is counted.
    auto out = EthernetFrame({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kGuestMac, "into the void");
    std::vector<uint8_t> with_hdr(kVirtioNetHdrSize, 0);
    with_hdr.insert(with_hdr.end(), out.begin(), out.end());
    for (int i = 0; i < 3; ++i) {
      tx.AddChain({{tx.AllocWith(with_hdr), static_cast<uint32_t>(with_hdr.size())}});
      net->ProcessQueue(kNetTxQueue);
    }
    EXPECT_EQ(tx.used_idx(), 3);
    EXPECT_EQ(net->metrics().tx_frames, 0u);
    EXPECT_EQ(net->metrics().tx_errors, 3u);
    // Nothing arrives, and the guest's RX buffers stay posted.
    net->OnEvent(tap_fd, EPOLLIN);
    EXPECT_EQ(rx.used_idx(), 0);
  });
  worker.join();
  (void)SetLogPath("/dev/stderr").ok();  // Back to where the log went before.
  std::ifstream log(log_path);
  std::stringstream text;
  text << log.rdbuf();
  ::unlink(log_path.c_str());
  const std::string logged = text.str();
  EXPECT_NE(logged.find("virtio-net eth0: TX: write hnt1: "), std::string::npos) << logged;
  EXPECT_NE(logged.find("dropping frames"), std::string::npos) << logged;
  // One warning, not one per frame.
  EXPECT_EQ(logged.find("dropping frames"), logged.rfind("dropping frames")) << logged;
}

}  // namespace
}  // namespace hearth
