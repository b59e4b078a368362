// virtio-net against a socketpair backend on plain memory: the test is the guest driver (rings
// via VirtioDriver) and the peer end of the socket is the "host network".
#include "virtio/net/net.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "tests/virtio_support/fake_timer.h"
#include "tests/virtio_support/virtio_driver.h"
#include "virtio/net/socket_backend.h"

namespace hearth {
namespace {

using testing::BufferSpec;
using testing::VirtioDriver;

constexpr MacAddress kMac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
constexpr unsigned kAllOffloads = kTunFCsum | kTunFTso4 | kTunFTso6 | kTunFUfo;

class CountingInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t cause) override {
    ++count;
    causes |= cause;
  }
  void SetNeedsReset() override { ++needs_reset; }
  int count = 0;
  int needs_reset = 0;
  uint32_t causes = 0;
};

// A frame as it crosses the backend: a 12-byte header then `payload_len` patterned bytes.
std::vector<uint8_t> MakeFrame(size_t payload_len, uint8_t seed = 1, uint8_t hdr_flags = 0) {
  std::vector<uint8_t> f(kVirtioNetHdrSize + payload_len);
  f[0] = hdr_flags;
  for (size_t i = 0; i < payload_len; ++i) {
    f[kVirtioNetHdrSize + i] = static_cast<uint8_t>(seed + i * 7);
  }
  return f;
}

uint16_t HeaderNumBuffers(const std::vector<uint8_t>& hdr) {
  uint16_t v;
  std::memcpy(&v, hdr.data() + offsetof(VirtioNetHdr, num_buffers), 2);
  return v;
}

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeDevice(kMac, kAllOffloads); }

  // The rate limiters (unlimited unless given) run on fake clocks (rx_timer_, tx_timer_).
  void MakeDevice(std::optional<MacAddress> mac, unsigned offloads,
                  std::optional<RateLimiterConfig> rx_limit = std::nullopt,
                  std::optional<RateLimiterConfig> tx_limit = std::nullopt) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    peer_ = Fd(sv[1]);
    auto backend = SocketBackend::Create(Fd(sv[0]), offloads, "sp0");
    ASSERT_TRUE(backend.ok()) << backend.error().message();
    backend_ = backend->get();
    auto rx_timer = std::make_unique<testing::FakeTimer>();
    auto tx_timer = std::make_unique<testing::FakeTimer>();
    rx_timer_ = rx_timer.get();
    tx_timer_ = tx_timer.get();
    auto net = Net::Create(NetOptions{"eth0", "tap0", mac, rx_limit, tx_limit},
                           std::move(backend).value(), std::move(rx_timer), std::move(tx_timer));
    ASSERT_TRUE(net.ok()) << net.error().message();
    net_ = std::move(net).value();
  }

  // Lays out both queues and activates the device with `features` (event idx and indirect
  // descriptors follow the features).
  void Activate(uint64_t features, uint16_t rx_size = 256) {
    auto memory = GuestMemory::Create({{0, 8 << 20}});
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(memory).value());
    rx_ = std::make_unique<VirtioDriver>(*memory_, 0x0, rx_size, 0x100000);
    tx_ = std::make_unique<VirtioDriver>(*memory_, 0x10000, 256, 0x400000);
    queues_.clear();
    queues_.emplace_back(kNetQueueMaxSize);
    queues_.emplace_back(kNetQueueMaxSize);
    const bool event_idx = features & kVirtioFRingEventIdx;
    const bool indirect = features & kVirtioFRingIndirectDesc;
    rx_->Configure(queues_[kNetRxQueue], event_idx, indirect);
    tx_->Configure(queues_[kNetTxQueue], event_idx, indirect);
    interrupt_ = std::make_shared<CountingInterrupt>();
    Status s = net_->Activate({&*memory_, &queues_, interrupt_, features | kVirtioFVersion1});
    ASSERT_TRUE(s.ok()) << s.error().message();
  }

  // Posts one RX chain of writable buffers of these sizes; returns the head and the addresses.
  uint16_t PostRx(const std::vector<uint32_t>& sizes, std::vector<uint64_t>* addrs = nullptr) {
    std::vector<BufferSpec> specs;
    for (uint32_t size : sizes) {
      uint64_t addr = rx_->Alloc(size);
      if (addrs) addrs->push_back(addr);
      specs.push_back({addr, size, true});
    }
    return rx_->AddChain(specs);
  }

  void PeerSend(const std::vector<uint8_t>& frame) {
    ASSERT_EQ(::send(peer_.get(), frame.data(), frame.size(), MSG_DONTWAIT),
              static_cast<ssize_t>(frame.size()));
  }
  // The next frame at the peer, or nothing.
  std::optional<std::vector<uint8_t>> PeerReceive() {
    std::vector<uint8_t> buf(kVirtioNetMaxFrame + 100);
    ssize_t n = ::recv(peer_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

  void BackendReadable() { net_->OnEvent(backend_->fd(), EPOLLIN); }
  // The event loop's part when a limiter's timer expires.
  void FireTimer(testing::FakeTimer* timer) {
    timer->AdvanceToDeadline();
    ASSERT_TRUE(timer->readable());
    net_->OnEvent(timer->fd(), EPOLLIN);
  }

  Fd peer_;
  SocketBackend* backend_ = nullptr;
  std::unique_ptr<Net> net_;
  std::optional<GuestMemory> memory_;
  std::unique_ptr<VirtioDriver> rx_, tx_;
  std::vector<Queue> queues_;
  std::shared_ptr<CountingInterrupt> interrupt_;
  testing::FakeTimer* rx_timer_ = nullptr;
  testing::FakeTimer* tx_timer_ = nullptr;
};

constexpr uint64_t kBasic = kVirtioFRingIndirectDesc;
constexpr uint64_t kMergeable = kVirtioFRingIndirectDesc | kVirtioNetFMrgRxbuf;

// ---- Features and config ---------------------------------------------------------------------

TEST_F(NetTest, OffersFeaturesTheBackendSupports) {
  const uint64_t f = net_->device_features();
  for (uint64_t bit :
       {kVirtioFVersion1, kVirtioFRingEventIdx, kVirtioFRingIndirectDesc, kVirtioNetFMac,
        kVirtioNetFStatus, kVirtioNetFMrgRxbuf, kVirtioNetFCsum, kVirtioNetFGuestCsum,
        kVirtioNetFGuestTso4, kVirtioNetFGuestTso6, kVirtioNetFGuestUfo, kVirtioNetFHostTso4,
        kVirtioNetFHostTso6, kVirtioNetFHostUfo}) {
    EXPECT_TRUE(f & bit) << "bit " << __builtin_ctzll(bit);
  }
  EXPECT_EQ(net_->device_type(), kVirtioIdNet);
  EXPECT_EQ(net_->queue_max_sizes(), (std::vector<uint16_t>{256, 256}));
}

TEST_F(NetTest, OffersNoMacWithoutOneAndNoUfoWhenTheBackendLacksIt) {
  MakeDevice(std::nullopt, kTunFCsum | kTunFTso4 | kTunFTso6);
  const uint64_t f = net_->device_features();
  EXPECT_FALSE(f & kVirtioNetFMac);
  EXPECT_FALSE(f & (kVirtioNetFGuestUfo | kVirtioNetFHostUfo));
  EXPECT_TRUE(f & kVirtioNetFGuestTso4);

  MakeDevice(kMac, 0);
  EXPECT_EQ(
      net_->device_features() & (kVirtioNetFCsum | kVirtioNetFGuestCsum | kVirtioNetFHostTso4 |
                                 kVirtioNetFGuestTso4 | kVirtioNetFHostTso6 | kVirtioNetFGuestTso6),
      0u);
}

TEST_F(NetTest, ConfigSpaceHoldsMacStatusAndQueuePairs) {
  std::vector<uint8_t> config(16, 0xee);
  net_->ReadConfig(0, config);
  EXPECT_EQ(std::vector<uint8_t>(config.begin(), config.begin() + 6),
            std::vector<uint8_t>(kMac.begin(), kMac.end()));
  EXPECT_EQ(config[6] | config[7] << 8, kVirtioNetStatusLinkUp);
  EXPECT_EQ(config[8] | config[9] << 8, 1);
  for (size_t i = 10; i < config.size(); ++i) EXPECT_EQ(config[i], 0) << i;

  // Partial and out-of-range reads; writes change nothing.
  std::vector<uint8_t> two(2);
  net_->ReadConfig(4, two);
  EXPECT_EQ(two, (std::vector<uint8_t>{0x44, 0x55}));
  std::vector<uint8_t> far(4, 0xee);
  net_->ReadConfig(~0ull - 1, far);
  EXPECT_EQ(far, std::vector<uint8_t>(4, 0));
  const std::vector<uint8_t> junk(6, 0xff);
  net_->WriteConfig(0, junk);
  net_->ReadConfig(4, two);
  EXPECT_EQ(two, (std::vector<uint8_t>{0x44, 0x55}));
}

TEST_F(NetTest, ActivateTellsTheBackendWhatTheGuestAcked) {
  Activate(kVirtioNetFGuestCsum | kVirtioNetFGuestTso4 | kVirtioNetFHostTso6);
  EXPECT_EQ(backend_->offloads(), kTunFCsum | kTunFTso4);
  net_->Reset();
  EXPECT_EQ(backend_->offloads(), 0u);
  // Segmentation without checksum offload is not something a tap can deliver.
  Activate(kVirtioNetFGuestTso4 | kVirtioNetFGuestTso6);
  EXPECT_EQ(backend_->offloads(), 0u);
}

TEST_F(NetTest, EventSourcesAreTheBackendEdgeTriggeredAndTheLimiterTimers) {
  auto sources = net_->event_sources();
  ASSERT_EQ(sources.size(), 3u);
  EXPECT_EQ(sources[0].fd, backend_->fd());
  EXPECT_EQ(sources[0].events, static_cast<uint32_t>(EPOLLIN | EPOLLOUT | EPOLLET));
  EXPECT_EQ(sources[1].fd, net_->rx_rate_limiter().timer_fd());
  EXPECT_EQ(sources[2].fd, net_->tx_rate_limiter().timer_fd());
  EXPECT_EQ(sources[1].events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(sources[2].events, static_cast<uint32_t>(EPOLLIN));
}

TEST(NetCreate, RejectsBadOptions) {
  auto make = [](NetOptions options) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    Fd peer(sv[1]);  // Closed: nothing is sent.
    return Net::Create(options, SocketBackend::Create(Fd(sv[0]), 0).value());
  };
  auto r = make({"", "tap0", std::nullopt, {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "network interface id is empty");
  r = make({"eth0", "", std::nullopt, {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "network interface eth0: tap name is empty");
  r = make({"eth0", "a/b", std::nullopt, {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "network interface eth0: tap name 'a/b' contains '/', whitespace or NUL");
  r = make({"eth0", "0123456789abcdef", std::nullopt, {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "network interface eth0: tap name '0123456789abcdef' is longer than 15 characters");
  r = make({"eth0", "tap0", MacAddress{0x01, 0, 0, 0, 0, 1}, {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "network interface eth0: guest MAC is a multicast address");
  EXPECT_TRUE(make({"eth0", "0123456789abcde", kMac, {}, {}}).ok());
}

// ---- TX -------------------------------------------------------------------------------------

TEST_F(NetTest, TxSendsOneFrameWithItsHeader) {
  Activate(kBasic);
  const auto frame = MakeFrame(60, 3, /*NEEDS_CSUM*/ 1);
  uint16_t head = tx_->AddChain({{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size())}});
  net_->ProcessQueue(kNetTxQueue);

  auto got = PeerReceive();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, frame);
  EXPECT_FALSE(PeerReceive());
  auto used = tx_->UsedSince(0);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].id, head);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(interrupt_->count, 1);
  EXPECT_EQ(interrupt_->causes, kVirtioIntUsedBuffer);
  auto m = net_->metrics();
  EXPECT_EQ(m.tx_frames, 1u);
  EXPECT_EQ(m.tx_bytes, 60u);
  EXPECT_EQ(m.tx_dropped, 0u);
}

TEST_F(NetTest, TxGathersAMultiDescriptorChain) {
  Activate(kBasic);
  const auto frame = MakeFrame(1500, 9);
  std::span<const uint8_t> all(frame);
  // Header alone, then the frame in uneven pieces.
  tx_->AddChain({{tx_->AllocWith(all.first(12)), 12},
                 {tx_->AllocWith(all.subspan(12, 100)), 100},
                 {tx_->AllocWith(all.subspan(112, 1)), 1},
                 {tx_->AllocWith(all.subspan(113)), static_cast<uint32_t>(frame.size() - 113)}});
  net_->ProcessQueue(kNetTxQueue);
  auto got = PeerReceive();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, frame);
  EXPECT_EQ(tx_->used_idx(), 1);
}

TEST_F(NetTest, TxGathersAnIndirectChain) {
  Activate(kBasic);
  const auto frame = MakeFrame(800, 5);
  std::span<const uint8_t> all(frame);
  tx_->AddIndirectChain(
      {{tx_->AllocWith(all.first(12)), 12},
       {tx_->AllocWith(all.subspan(12)), static_cast<uint32_t>(frame.size() - 12)}});
  net_->ProcessQueue(kNetTxQueue);
  auto got = PeerReceive();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, frame);
  EXPECT_EQ(net_->metrics().tx_frames, 1u);
}

TEST_F(NetTest, TxDropsInvalidChainsAndCountsThem) {
  Activate(kBasic);
  // Larger than a 64 KiB frame plus header.
  uint64_t big = tx_->Alloc(kVirtioNetMaxFrame + 1);
  uint16_t h1 = tx_->AddChain({{big, kVirtioNetMaxFrame + 1}});
  // A writable buffer in a TX chain.
  const auto frame = MakeFrame(40);
  uint16_t h2 = tx_->AddChain(
      {{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size())}, {tx_->Alloc(64), 64, true}});
  // Shorter than the header.
  uint16_t h3 = tx_->AddChain({{tx_->Alloc(8), 8}});
  // Then a good one, which still goes out.
  const auto good = MakeFrame(70, 2);
  uint16_t h4 = tx_->AddChain({{tx_->AllocWith(good), static_cast<uint32_t>(good.size())}});
  net_->ProcessQueue(kNetTxQueue);

  auto got = PeerReceive();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, good);
  EXPECT_FALSE(PeerReceive());
  auto used = tx_->UsedSince(0);
  ASSERT_EQ(used.size(), 4u);
  EXPECT_EQ(used[0].id, h1);
  EXPECT_EQ(used[1].id, h2);
  EXPECT_EQ(used[2].id, h3);
  EXPECT_EQ(used[3].id, h4);
  for (const auto& u : used) EXPECT_EQ(u.len, 0u);
  auto m = net_->metrics();
  EXPECT_EQ(m.tx_dropped, 3u);
  EXPECT_EQ(m.tx_frames, 1u);
}

TEST_F(NetTest, TxAcceptsTheLargestFrame) {
  Activate(kBasic);
  const auto frame = MakeFrame(kVirtioNetMaxFrame - kVirtioNetHdrSize, 4);
  // Enough room at the peer for one 64 KiB message.
  int size = 1 << 20;
  ASSERT_EQ(::setsockopt(peer_.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
  ASSERT_EQ(::setsockopt(backend_->fd(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
  tx_->AddChain({{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size())}});
  net_->ProcessQueue(kNetTxQueue);
  auto got = PeerReceive();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), frame.size());
  EXPECT_EQ(*got, frame);
}

TEST_F(NetTest, TxWaitsWhileTheBackendIsFullThenResumesOnWritable) {
  Activate(kBasic);
  // Fill the socket from the device's end until the kernel refuses more.
  std::vector<uint8_t> filler(1000, 0xaa);
  int sent = 0;
  while (::send(backend_->fd(), filler.data(), filler.size(), MSG_DONTWAIT) > 0) ++sent;
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_GT(sent, 0);

  const auto frame = MakeFrame(100, 8);
  tx_->AddChain({{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size())}});
  net_->ProcessQueue(kNetTxQueue);
  EXPECT_EQ(tx_->used_idx(), 0) << "the chain is kept, not dropped";
  EXPECT_EQ(net_->metrics().tx_would_block, 1u);
  EXPECT_EQ(net_->metrics().tx_dropped, 0u);
  // An RX-only event does not retry TX.
  BackendReadable();
  EXPECT_EQ(tx_->used_idx(), 0);

  for (int i = 0; i < sent; ++i) ASSERT_TRUE(PeerReceive());
  net_->OnEvent(backend_->fd(), EPOLLOUT);
  auto got = PeerReceive();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, frame);
  EXPECT_EQ(tx_->used_idx(), 1);
  EXPECT_EQ(net_->metrics().tx_frames, 1u);
}

// ---- RX -------------------------------------------------------------------------------------

// Found by fuzz_mmio: a driver that makes only the TX queue ready still gets DRIVER_OK, and the
// RX queue's registers then point at guest page 0; a frame from the host made the device pop
// "chains" there and write into memory the driver never offered.
TEST_F(NetTest, NeverTouchesAQueueTheDriverDidNotMakeReady) {
  Activate(kBasic);
  net_->Reset();
  queues_[kNetRxQueue].set_ready(false);
  Status s = net_->Activate({&*memory_, &queues_, interrupt_, kBasic | kVirtioFVersion1});
  ASSERT_TRUE(s.ok()) << s.error().message();
  std::vector<uint64_t> addrs;
  PostRx({2048}, &addrs);  // Rings where the unready queue points: what a pop would find.
  const auto before = rx_->ReadBytes(0, 0x2000);
  const auto buffer_before = rx_->ReadBytes(addrs[0], 2048);
  PeerSend(MakeFrame(100));
  BackendReadable();
  net_->ProcessQueue(kNetRxQueue);
  EXPECT_EQ(rx_->ReadBytes(0, 0x2000), before);
  EXPECT_EQ(rx_->ReadBytes(addrs[0], 2048), buffer_before);
  EXPECT_EQ(rx_->used_idx(), 0);
  EXPECT_EQ(net_->metrics().rx_frames, 0u);
  EXPECT_FALSE(net_->needs_reset());
}


TEST_F(NetTest, RxFrameLandsInAPostedBuffer) {
  Activate(kBasic);
  std::vector<uint64_t> addrs;
  uint16_t head = PostRx({2048}, &addrs);
  net_->ProcessQueue(kNetRxQueue);
  auto frame = MakeFrame(100, 7, /*DATA_VALID*/ 2);
  PeerSend(frame);
  BackendReadable();

  auto used = rx_->UsedSince(0);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].id, head);
  EXPECT_EQ(used[0].len, frame.size());
  auto got = rx_->ReadBytes(addrs[0], frame.size());
  EXPECT_EQ(HeaderNumBuffers(got), 1);
  EXPECT_EQ(got[0], 0) << "flags are cleared without GUEST_CSUM";
  EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), got.begin() + 12));
  EXPECT_EQ(interrupt_->count, 1);
  auto m = net_->metrics();
  EXPECT_EQ(m.rx_frames, 1u);
  EXPECT_EQ(m.rx_bytes, 100u);
}

TEST_F(NetTest, RxKeepsHeaderFlagsWithGuestCsum) {
  Activate(kBasic | kVirtioNetFGuestCsum);
  std::vector<uint64_t> addrs;
  PostRx({6, 6, 1000}, &addrs);  // The header spans two descriptors.
  auto frame = MakeFrame(200, 1, /*DATA_VALID*/ 2);
  PeerSend(frame);
  BackendReadable();
  ASSERT_EQ(rx_->used_idx(), 1);
  EXPECT_EQ(rx_->used_elem(0).len, frame.size());
  auto hdr = rx_->ReadBytes(addrs[0], 6);
  auto hdr2 = rx_->ReadBytes(addrs[1], 6);
  hdr.insert(hdr.end(), hdr2.begin(), hdr2.end());
  EXPECT_EQ(hdr[0], 2);
  EXPECT_EQ(HeaderNumBuffers(hdr), 1);
  EXPECT_EQ(rx_->ReadBytes(addrs[2], 200), std::vector<uint8_t>(frame.begin() + 12, frame.end()));
}

TEST_F(NetTest, RxMergesAFrameAcrossTwoChains) {
  Activate(kMergeable);
  std::vector<uint64_t> a, b;
  uint16_t h0 = PostRx({1000}, &a);
  uint16_t h1 = PostRx({1000}, &b);
  auto frame = MakeFrame(1488, 11);  // 1500 bytes with the header.
  PeerSend(frame);
  BackendReadable();

  auto used = rx_->UsedSince(0);
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].id, h0);
  EXPECT_EQ(used[0].len, 1000u);
  EXPECT_EQ(used[1].id, h1);
  EXPECT_EQ(used[1].len, 500u);
  auto got = rx_->ReadBytes(a[0], 1000);
  auto rest = rx_->ReadBytes(b[0], 500);
  EXPECT_EQ(HeaderNumBuffers(got), 2);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_TRUE(std::equal(frame.begin() + 12, frame.end(), got.begin() + 12));
  EXPECT_EQ(interrupt_->count, 1);
}

TEST_F(NetTest, RxReadsStraightIntoManyMergeableChains) {
  Activate(kMergeable);
  // Enough buffers for any frame: the device reads directly into them.
  std::vector<std::vector<uint64_t>> addrs(70);
  std::vector<uint16_t> heads;
  for (auto& a : addrs) heads.push_back(PostRx({1024}, &a));
  auto f1 = MakeFrame(3000 - 12, 21);
  auto f2 = MakeFrame(500 - 12, 22);
  PeerSend(f1);
  PeerSend(f2);
  BackendReadable();

  auto used = rx_->UsedSince(0);
  ASSERT_EQ(used.size(), 4u);
  EXPECT_EQ(used[0].id, heads[0]);
  EXPECT_EQ(used[0].len, 1024u);
  EXPECT_EQ(used[1].len, 1024u);
  EXPECT_EQ(used[2].id, heads[2]);
  EXPECT_EQ(used[2].len, 3000u - 2048u);
  EXPECT_EQ(used[3].id, heads[3]);
  EXPECT_EQ(used[3].len, 500u);
  std::vector<uint8_t> got;
  for (int i = 0; i < 3; ++i) {
    auto part = rx_->ReadBytes(addrs[i][0], used[i].len);
    got.insert(got.end(), part.begin(), part.end());
  }
  EXPECT_EQ(HeaderNumBuffers(got), 3);
  EXPECT_TRUE(std::equal(f1.begin() + 12, f1.end(), got.begin() + 12));
  auto second = rx_->ReadBytes(addrs[3][0], 500);
  EXPECT_EQ(HeaderNumBuffers(second), 1);
  EXPECT_TRUE(std::equal(f2.begin() + 12, f2.end(), second.begin() + 12));
  EXPECT_EQ(net_->metrics().rx_frames, 2u);
}

TEST_F(NetTest, RxWithoutBuffersKeepsFramesUntilTheGuestPostsSome) {
  Activate(kBasic);
  auto f1 = MakeFrame(64, 31);
  auto f2 = MakeFrame(80, 32);
  PeerSend(f1);
  PeerSend(f2);
  BackendReadable();
  BackendReadable();  // Another edge changes nothing.
  EXPECT_EQ(rx_->used_idx(), 0);
  EXPECT_EQ(interrupt_->count, 0);
  auto m = net_->metrics();
  EXPECT_EQ(m.rx_no_buffers, 1u);
  EXPECT_EQ(m.rx_dropped, 0u);
  EXPECT_EQ(rx_->used_flags() & kVirtqUsedNoNotify, 0) << "the guest is asked to kick";

  std::vector<uint64_t> a, b;
  PostRx({1600}, &a);
  net_->ProcessQueue(kNetRxQueue);  // The guest's kick.
  ASSERT_EQ(rx_->used_idx(), 1);
  EXPECT_EQ(rx_->used_elem(0).len, f1.size());
  EXPECT_TRUE(std::equal(f1.begin() + 12, f1.end(), rx_->ReadBytes(a[0], f1.size()).begin() + 12));
  EXPECT_EQ(net_->metrics().rx_no_buffers, 2u);  // Out of buffers again, with f2 waiting.
  PostRx({1600}, &b);
  net_->ProcessQueue(kNetRxQueue);
  ASSERT_EQ(rx_->used_idx(), 2);
  EXPECT_EQ(rx_->used_elem(1).len, f2.size());
  EXPECT_TRUE(std::equal(f2.begin() + 12, f2.end(), rx_->ReadBytes(b[0], f2.size()).begin() + 12));
  EXPECT_EQ(net_->metrics().rx_frames, 2u);
  EXPECT_EQ(net_->metrics().rx_dropped, 0u);
}

TEST_F(NetTest, RxMergeableFrameWaitsForEnoughBuffers) {
  Activate(kMergeable);
  std::vector<uint64_t> a, b;
  PostRx({1000}, &a);
  auto frame = MakeFrame(1500 - 12, 41);
  PeerSend(frame);
  BackendReadable();
  EXPECT_EQ(rx_->used_idx(), 0) << "1000 bytes posted for a 1500-byte frame";
  EXPECT_EQ(net_->metrics().rx_dropped, 0u);
  PostRx({1000}, &b);
  net_->ProcessQueue(kNetRxQueue);
  auto used = rx_->UsedSince(0);
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len + used[1].len, 1500u);
  EXPECT_EQ(HeaderNumBuffers(rx_->ReadBytes(a[0], 12)), 2);
}

TEST_F(NetTest, RxDropsAFrameLargerThanTheChain) {
  Activate(kBasic);
  std::vector<uint64_t> a;
  uint16_t head = PostRx({100}, &a);
  PeerSend(MakeFrame(500, 51));
  auto small = MakeFrame(50, 52);
  PeerSend(small);
  BackendReadable();
  // The big one is gone (counted); the small one used the same buffer.
  ASSERT_EQ(rx_->used_idx(), 1);
  EXPECT_EQ(rx_->used_elem(0).id, head);
  EXPECT_EQ(rx_->used_elem(0).len, small.size());
  EXPECT_TRUE(
      std::equal(small.begin() + 12, small.end(), rx_->ReadBytes(a[0], small.size()).begin() + 12));
  auto m = net_->metrics();
  EXPECT_EQ(m.rx_dropped, 1u);
  EXPECT_EQ(m.rx_frames, 1u);
}

TEST_F(NetTest, RxDropsAMergeableFrameLargerThanTheWholeRing) {
  Activate(kMergeable, /*rx_size=*/2);
  std::vector<uint64_t> a, b;
  PostRx({100}, &a);
  PostRx({100}, &b);
  PeerSend(MakeFrame(500, 61));
  auto fits = MakeFrame(150 - 12, 62);
  PeerSend(fits);
  BackendReadable();
  auto used = rx_->UsedSince(0);
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].len, 100u);
  EXPECT_EQ(used[1].len, 50u);
  EXPECT_EQ(HeaderNumBuffers(rx_->ReadBytes(a[0], 12)), 2);
  EXPECT_EQ(net_->metrics().rx_dropped, 1u);
  EXPECT_EQ(net_->metrics().rx_frames, 1u);
}

TEST_F(NetTest, RxReturnsChainsThatAreNotRxBuffers) {
  Activate(kBasic);
  // A readable buffer, and a chain too short for the header.
  uint16_t h1 = rx_->AddChain({{rx_->Alloc(64), 64}, {rx_->Alloc(1500), 1500, true}});
  uint16_t h2 = PostRx({8});
  uint16_t h3 = PostRx({1500});
  auto frame = MakeFrame(60);
  PeerSend(frame);
  BackendReadable();
  auto used = rx_->UsedSince(0);
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(used[0].id, h1);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(used[1].id, h2);
  EXPECT_EQ(used[1].len, 0u);
  EXPECT_EQ(used[2].id, h3);
  EXPECT_EQ(used[2].len, frame.size());
  EXPECT_EQ(net_->metrics().malformed_chains, 2u);
}

TEST_F(NetTest, RxCountsRuntFramesAsErrors) {
  Activate(kBasic);
  PostRx({1500});
  PeerSend(std::vector<uint8_t>(5, 1));
  BackendReadable();
  EXPECT_EQ(rx_->used_idx(), 0);
  EXPECT_EQ(net_->metrics().rx_errors, 1u);
}

// ---- Rings ------------------------------------------------------------------------------------

TEST_F(NetTest, MalformedTxChainIsReturnedWithLengthZero) {
  Activate(kBasic);
  tx_->WriteDescriptor(0, VirtqDesc{0x7fffff00, 0x1000, 0, 0});  // Runs past guest memory.
  tx_->PublishHead(0);
  const auto frame = MakeFrame(30);
  tx_->WriteDescriptor(1,
                       VirtqDesc{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size()), 0, 0});
  tx_->PublishHead(1);
  net_->ProcessQueue(kNetTxQueue);
  auto used = tx_->UsedSince(0);
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].id, 0u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(net_->metrics().malformed_chains, 1u);
  EXPECT_TRUE(PeerReceive());
  EXPECT_FALSE(net_->needs_reset());
  EXPECT_EQ(interrupt_->needs_reset, 0);
}

TEST_F(NetTest, BrokenRingStopsTheDevice) {
  Activate(kBasic);
  tx_->SetAvailIdx(1000);  // More entries than the ring has.
  net_->ProcessQueue(kNetTxQueue);
  EXPECT_TRUE(net_->needs_reset());
  EXPECT_EQ(interrupt_->needs_reset, 1);
  EXPECT_EQ(tx_->used_idx(), 0);
  // Nothing more happens until a reset.
  net_->ProcessQueue(kNetTxQueue);
  EXPECT_EQ(net_->metrics().malformed_chains, 1u);
  net_->Reset();
  EXPECT_FALSE(net_->needs_reset());
}

TEST_F(NetTest, EventIdxSuppressesInterruptsAndAsksForKicks) {
  Activate(kBasic | kVirtioFRingEventIdx);
  auto send = [&](uint8_t seed) {
    const auto frame = MakeFrame(40, seed);
    tx_->AddChain({{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size())}});
    net_->ProcessQueue(kNetTxQueue);
  };
  send(1);
  EXPECT_EQ(interrupt_->count, 1);
  EXPECT_EQ(tx_->avail_event(), 1) << "kick me when entry 1 is added";
  // The driver wants an interrupt only once used entry 4 is written (used idx 4 -> 5).
  tx_->SetUsedEvent(4);
  for (uint8_t i = 2; i <= 4; ++i) {
    send(i);
    EXPECT_EQ(tx_->used_idx(), i);
    EXPECT_EQ(interrupt_->count, 1) << "used idx " << int{i};
    EXPECT_EQ(tx_->avail_event(), i);
  }
  send(5);
  EXPECT_EQ(interrupt_->count, 2);
  send(6);
  EXPECT_EQ(interrupt_->count, 2) << "used_event is behind: no more interrupts";
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(PeerReceive());
}

TEST_F(NetTest, NoInterruptFlagSuppressesInterruptsWithoutEventIdx) {
  Activate(kBasic);
  tx_->SetAvailFlags(kVirtqAvailNoInterrupt);
  const auto frame = MakeFrame(40);
  tx_->AddChain({{tx_->AllocWith(frame), static_cast<uint32_t>(frame.size())}});
  net_->ProcessQueue(kNetTxQueue);
  EXPECT_EQ(tx_->used_idx(), 1);
  EXPECT_EQ(interrupt_->count, 0);
}

TEST_F(NetTest, IgnoresQueuesAndEventsBeforeActivation) {
  net_->ProcessQueue(kNetTxQueue);
  net_->OnEvent(backend_->fd(), EPOLLIN | EPOLLOUT);
  EXPECT_FALSE(net_->activated());
  Activate(kBasic);
  EXPECT_TRUE(net_->activated());
  Status again = net_->Activate({&*memory_, &queues_, interrupt_, kVirtioFVersion1});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message(), "virtio-net eth0: already activated");
}

// ---- State ------------------------------------------------------------------------------------

TEST_F(NetTest, SaveAndRestoreRoundTrip) {
  const uint64_t acked =
      kVirtioFVersion1 | kVirtioNetFMac | kVirtioNetFMrgRxbuf | kVirtioNetFGuestCsum;
  Activate(acked);
  NetState state = net_->Save();
  EXPECT_EQ(state.iface_id, "eth0");
  EXPECT_EQ(state.host_dev_name, "tap0");
  EXPECT_EQ(state.guest_mac, kMac);
  EXPECT_EQ(state.acked_features, acked);

  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  Fd other(sv[1]);
  auto restored = Net::Restore(state, SocketBackend::Create(Fd(sv[0]), kAllOffloads).value());
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  NetState again = (*restored)->Save();
  EXPECT_EQ(again.iface_id, state.iface_id);
  EXPECT_EQ(again.host_dev_name, state.host_dev_name);
  EXPECT_EQ(again.guest_mac, state.guest_mac);
  EXPECT_EQ(again.acked_features, state.acked_features);
}

TEST_F(NetTest, RestoreRejectsFeaturesTheBackendNoLongerOffers) {
  NetState state{"eth0", "tap0", std::nullopt,
                 kVirtioFVersion1 | kVirtioNetFGuestTso4 | kVirtioNetFGuestCsum, {}, {}};
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  Fd other(sv[1]);
  auto restored = Net::Restore(state, SocketBackend::Create(Fd(sv[0]), 0).value());
  ASSERT_FALSE(restored.ok());
  EXPECT_NE(
      restored.error().message().find(
          "net state: network interface eth0: acked features 0x100000082 are not all offered"),
      std::string::npos)
      << restored.error().message();
}

// ---- Rate limiters ---------------------------------------------------------------------------

RateLimiterConfig Bytes(uint64_t size, uint64_t refill_ms) {
  RateLimiterConfig c;
  c.bandwidth = TokenBucketConfig{size, 0, refill_ms};
  return c;
}
RateLimiterConfig Frames(uint64_t size, uint64_t refill_ms) {
  RateLimiterConfig c;
  c.ops = TokenBucketConfig{size, 0, refill_ms};
  return c;
}
constexpr uint64_t kMs = 1'000'000;

TEST_F(NetTest, TxThrottledFrameStaysOnTheRingUntilTheTimer) {
  MakeDevice(kMac, kAllOffloads, std::nullopt, Bytes(200, 100));  // Two 100-byte frames.
  Activate(kBasic);
  std::vector<std::vector<uint8_t>> frames;
  for (uint8_t i = 0; i < 3; ++i) {
    frames.push_back(MakeFrame(100 - kVirtioNetHdrSize, i));
    tx_->AddChain({{tx_->AllocWith(frames[i]), 100}});
  }
  net_->ProcessQueue(kNetTxQueue);
  EXPECT_EQ(*PeerReceive(), frames[0]);
  EXPECT_EQ(*PeerReceive(), frames[1]);
  EXPECT_FALSE(PeerReceive());
  EXPECT_EQ(tx_->used_idx(), 2);
  EXPECT_EQ(queues_[kNetTxQueue].state().next_avail, 2);  // Back on the ring.
  auto m = net_->metrics();
  EXPECT_EQ(m.tx_rate_limiter_throttled_events, 1u);
  EXPECT_EQ(m.rate_limiter_throttled_events, 1u);
  EXPECT_EQ(m.rx_rate_limiter_throttled_events, 0u);
  EXPECT_EQ(tx_timer_->last_delay(), 50 * kMs);

  // Kicks and writability meanwhile change nothing.
  net_->ProcessQueue(kNetTxQueue);
  net_->OnEvent(backend_->fd(), EPOLLOUT);
  EXPECT_FALSE(PeerReceive());
  EXPECT_EQ(net_->metrics().tx_rate_limiter_throttled_events, 1u);
  // The RX timer is not the TX one.
  net_->OnEvent(rx_timer_->fd(), EPOLLIN);
  EXPECT_FALSE(PeerReceive());

  FireTimer(tx_timer_);
  EXPECT_EQ(*PeerReceive(), frames[2]);
  EXPECT_EQ(tx_->used_idx(), 3);
  EXPECT_EQ(net_->metrics().tx_frames, 3u);
  EXPECT_EQ(interrupt_->count, 2);
}

TEST_F(NetTest, TxChainsThatAreNotFramesCostNothing) {
  MakeDevice(kMac, kAllOffloads, std::nullopt, Frames(1, 1000));
  Activate(kBasic);
  tx_->AddChain({{tx_->Alloc(8), 8}});  // Shorter than the header: dropped, free.
  const auto good = MakeFrame(50, 1);
  tx_->AddChain({{tx_->AllocWith(good), static_cast<uint32_t>(good.size())}});
  const auto later = MakeFrame(50, 2);
  tx_->AddChain({{tx_->AllocWith(later), static_cast<uint32_t>(later.size())}});
  net_->ProcessQueue(kNetTxQueue);
  EXPECT_EQ(*PeerReceive(), good);
  EXPECT_FALSE(PeerReceive());
  EXPECT_EQ(net_->metrics().tx_dropped, 1u);
  EXPECT_EQ(tx_timer_->last_delay(), 1000 * kMs);
  FireTimer(tx_timer_);
  EXPECT_EQ(*PeerReceive(), later);
}

TEST_F(NetTest, RxThrottledFrameWaitsInTheGuestBuffersAndTheRestInTheBackend) {
  MakeDevice(kMac, kAllOffloads, Frames(1, 1000), std::nullopt);
  Activate(kBasic);
  std::vector<uint64_t> a, b, c;
  PostRx({1600}, &a);
  PostRx({1600}, &b);
  PostRx({1600}, &c);
  const auto f1 = MakeFrame(64, 1), f2 = MakeFrame(80, 2), f3 = MakeFrame(96, 3);
  PeerSend(f1);
  PeerSend(f2);
  PeerSend(f3);
  BackendReadable();
  ASSERT_EQ(rx_->used_idx(), 1);
  EXPECT_EQ(rx_->used_elem(0).len, f1.size());
  auto m = net_->metrics();
  EXPECT_EQ(m.rx_frames, 1u);
  EXPECT_EQ(m.rx_rate_limiter_throttled_events, 1u);
  EXPECT_EQ(m.rx_dropped, 0u);
  // More edges while throttled: nothing moves, nothing is lost.
  BackendReadable();
  net_->ProcessQueue(kNetRxQueue);
  EXPECT_EQ(rx_->used_idx(), 1);
  EXPECT_EQ(net_->metrics().rx_rate_limiter_throttled_events, 1u);

  FireTimer(rx_timer_);
  ASSERT_EQ(rx_->used_idx(), 2);
  EXPECT_EQ(rx_->used_elem(1).len, f2.size());
  EXPECT_TRUE(std::equal(f2.begin() + 12, f2.end(), rx_->ReadBytes(b[0], f2.size()).begin() + 12));
  FireTimer(rx_timer_);
  ASSERT_EQ(rx_->used_idx(), 3);
  EXPECT_TRUE(std::equal(f3.begin() + 12, f3.end(), rx_->ReadBytes(c[0], f3.size()).begin() + 12));
  m = net_->metrics();
  EXPECT_EQ(m.rx_frames, 3u);
  EXPECT_EQ(m.rx_dropped, 0u);
  EXPECT_EQ(m.rx_rate_limiter_throttled_events, 2u);  // f2, then f3.
}

TEST_F(NetTest, RxBounceBufferedFrameWaitsForTheLimiter) {
  // Mergeable with less posted than a maximal frame: frames go through the bounce buffer.
  MakeDevice(kMac, kAllOffloads, Bytes(100, 100), std::nullopt);
  Activate(kMergeable);
  std::vector<uint64_t> a, b;
  PostRx({100}, &a);
  PostRx({100}, &b);
  const auto f1 = MakeFrame(60, 1), f2 = MakeFrame(60, 2);  // 72 bytes each.
  PeerSend(f1);
  PeerSend(f2);
  BackendReadable();
  ASSERT_EQ(rx_->used_idx(), 1);
  EXPECT_EQ(rx_->used_elem(0).len, 72u);
  EXPECT_EQ(net_->metrics().rx_rate_limiter_throttled_events, 1u);
  EXPECT_EQ(rx_timer_->last_delay(), 44 * kMs);  // 28 bytes left of 100; 44 more at 1/ms.
  FireTimer(rx_timer_);
  ASSERT_EQ(rx_->used_idx(), 2);
  EXPECT_EQ(rx_->used_elem(1).len, 72u);
  EXPECT_TRUE(std::equal(f2.begin() + 12, f2.end(), rx_->ReadBytes(b[0], 72).begin() + 12));
  EXPECT_EQ(net_->metrics().rx_frames, 2u);
}

TEST_F(NetTest, ResetDropsAFrameHeldByTheLimiter) {
  MakeDevice(kMac, kAllOffloads, Frames(1, 1000), std::nullopt);
  Activate(kBasic);
  PostRx({1600});
  PostRx({1600});
  PeerSend(MakeFrame(64, 1));
  PeerSend(MakeFrame(64, 2));
  BackendReadable();
  ASSERT_EQ(rx_->used_idx(), 1);
  net_->Reset();
  EXPECT_EQ(net_->metrics().rx_dropped, 1u);
  FireTimer(rx_timer_);  // After reset: ignored.
  EXPECT_EQ(rx_->used_idx(), 1);
}

TEST_F(NetTest, UpdateRateLimitersResumesBothDirections) {
  MakeDevice(kMac, kAllOffloads, Frames(1, 60'000), Frames(1, 60'000));
  Activate(kBasic);
  PostRx({1600});
  PostRx({1600});
  PeerSend(MakeFrame(64, 1));
  PeerSend(MakeFrame(64, 2));
  BackendReadable();
  for (uint8_t i = 0; i < 2; ++i) {
    const auto f = MakeFrame(40, i);
    tx_->AddChain({{tx_->AllocWith(f), static_cast<uint32_t>(f.size())}});
  }
  net_->ProcessQueue(kNetTxQueue);
  ASSERT_EQ(rx_->used_idx(), 1);
  ASSERT_EQ(tx_->used_idx(), 1);
  ASSERT_TRUE(PeerReceive());

  // No change for an absent direction.
  ASSERT_TRUE(net_->UpdateRateLimiters(std::nullopt, std::nullopt).ok());
  EXPECT_EQ(net_->rx_rate_limiter().config(), Frames(1, 60'000));
  RateLimiterConfig lifted;
  lifted.ops = TokenBucketConfig{};
  ASSERT_TRUE(net_->UpdateRateLimiters(lifted, Frames(100, 1000)).ok());
  EXPECT_FALSE(net_->rx_rate_limiter().limited());
  EXPECT_EQ(net_->tx_rate_limiter().config(), Frames(100, 1000));
  FireTimer(rx_timer_);  // At once, not in a minute.
  FireTimer(tx_timer_);
  EXPECT_EQ(rx_timer_->last_delay(), 1u);
  EXPECT_EQ(rx_->used_idx(), 2);
  EXPECT_EQ(tx_->used_idx(), 2);
  EXPECT_TRUE(PeerReceive());
}

TEST_F(NetTest, SaveAndRestoreKeepTheRateLimiters) {
  MakeDevice(kMac, kAllOffloads, Bytes(1000, 100), Frames(1, 1000));
  Activate(kBasic);
  const auto f = MakeFrame(40, 1);
  tx_->AddChain({{tx_->AllocWith(f), static_cast<uint32_t>(f.size())}});
  tx_->AddChain({{tx_->AllocWith(f), static_cast<uint32_t>(f.size())}});
  net_->ProcessQueue(kNetTxQueue);
  NetState state = net_->Save();
  ASSERT_TRUE(state.rx_rate_limiter.bandwidth.has_value());
  EXPECT_EQ(state.rx_rate_limiter.bandwidth->size, 1000u);
  EXPECT_EQ(state.rx_rate_limiter.blocked_ns, 0u);
  ASSERT_TRUE(state.tx_rate_limiter.ops.has_value());
  EXPECT_EQ(state.tx_rate_limiter.ops->budget, 0u);
  EXPECT_EQ(state.tx_rate_limiter.blocked_ns, 1000 * kMs);

  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  Fd other(sv[1]);
  auto restored = Net::Restore(state, SocketBackend::Create(Fd(sv[0]), kAllOffloads).value());
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  EXPECT_EQ((*restored)->rx_rate_limiter().config(), Bytes(1000, 100));
  EXPECT_EQ((*restored)->tx_rate_limiter().config(), Frames(1, 1000));
  EXPECT_TRUE((*restored)->tx_rate_limiter().blocked());
  // (The restored device runs on the real clock: compare what does not move with time.)
  EXPECT_EQ((*restored)->Save().tx_rate_limiter.ops->budget, 0u);
  EXPECT_GT((*restored)->Save().tx_rate_limiter.blocked_ns, 900 * kMs);

  // A hostile state is refused with the field named.
  state.tx_rate_limiter.ops->budget = 2;
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  Fd other2(sv[1]);
  auto bad = Net::Restore(state, SocketBackend::Create(Fd(sv[0]), kAllOffloads).value());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "net state: network interface eth0 TX: rate limiter ops: token bucket state: budget 2 "
            "is larger than the bucket size 1");
}

// The snapshot path: SaveState bytes into a device rebuilt from the same configuration.
TEST_F(NetTest, SnapshotStateCarriesBothLimitersIntoARebuiltDevice) {
  MakeDevice(kMac, kAllOffloads, Bytes(1000, 100), Frames(1, 1000));
  Activate(kBasic);
  const auto f = MakeFrame(40, 1);
  tx_->AddChain({{tx_->AllocWith(f), static_cast<uint32_t>(f.size())}});
  tx_->AddChain({{tx_->AllocWith(f), static_cast<uint32_t>(f.size())}});
  net_->ProcessQueue(kNetTxQueue);
  const std::vector<uint8_t> bytes = net_->SaveState();
  const NetState saved = net_->Save();
  ASSERT_TRUE(saved.tx_rate_limiter.ops.has_value());
  EXPECT_EQ(saved.tx_rate_limiter.ops->budget, 0u);

  // Rebuilt as a restore does (same options, fake clocks at the same time), not activated.
  auto rebuild = [&](std::optional<RateLimiterConfig> rx, std::optional<RateLimiterConfig> tx) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    Fd peer(sv[1]);  // Closed: nothing is sent.
    auto net = Net::Create(NetOptions{"eth0", "tap0", kMac, rx, tx},
                           SocketBackend::Create(Fd(sv[0]), kAllOffloads, "sp1").value(),
                           std::make_unique<testing::FakeTimer>(), std::make_unique<testing::FakeTimer>());
    EXPECT_TRUE(net.ok());
    return std::move(net).value();
  };
  auto restored = rebuild(Bytes(1000, 100), Frames(1, 1000));
  auto s = restored->RestoreState(bytes);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(restored->Save().rx_rate_limiter, saved.rx_rate_limiter);
  EXPECT_EQ(restored->Save().tx_rate_limiter, saved.tx_rate_limiter);
  EXPECT_TRUE(restored->tx_rate_limiter().blocked());
  EXPECT_EQ(restored->SaveState(), bytes);

  // A device rebuilt with other limits refuses the state, naming the direction, and keeps
  // its own buckets.
  auto other = rebuild(Bytes(1000, 100), std::nullopt);
  const RateLimiterState rx_before = other->Save().rx_rate_limiter;
  auto refused = other->RestoreState(bytes);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "virtio-net eth0 state: TX rate limiter: ops bucket: the state has one, the configuration has none");
  EXPECT_EQ(other->Save().rx_rate_limiter, rx_before);
  // Truncated, another version, the active device: refused.
  EXPECT_FALSE(restored->RestoreState(std::span(bytes).first(bytes.size() - 1)).ok());
  std::vector<uint8_t> v2 = bytes;
  v2[0] = 2;
  auto version = rebuild(Bytes(1000, 100), Frames(1, 1000))->RestoreState(v2);
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().message(), "virtio-net eth0 state: version 2, this Hearth reads 1");
  auto active = net_->RestoreState(bytes);
  ASSERT_FALSE(active.ok());
  EXPECT_EQ(active.error().message(), "virtio-net eth0 state: the device is already active");
}

}  // namespace
}  // namespace hearth
