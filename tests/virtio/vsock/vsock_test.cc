// The vsock device against real UNIX sockets: the test is the guest driver (VsockGuest on plain
// memory) and the host programs (sockets on uds_path and <uds_path>_<port>).
#include "virtio/vsock/vsock.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <map>
#include <thread>

#include "tests/virtio/vsock/vsock_guest.h"

namespace hearth {
namespace {

using testing::VsockGuest;
using testing::VsockPacket;

constexpr uint64_t kCid = 3;

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hearth-vsock-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uds_ = dir_ + "/v.sock";
    auto memory = GuestMemory::Create({{0, 32 << 20}});
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(memory).value());
  }
  void TearDown() override {
    guest_.reset();
    vsock_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)!::system(cmd.c_str());
  }

  void MakeDevice(uint64_t connect_timeout_us = 5'000'000, size_t max_connections = 4096) {
    VsockOptions options{kCid, uds_, connect_timeout_us, max_connections};
    auto v = Vsock::Create(options);
    ASSERT_TRUE(v.ok()) << v.error().message();
    vsock_ = std::move(v).value();
    guest_ = std::make_unique<VsockGuest>(*memory_, *vsock_);
    Status s = guest_->Activate();
    ASSERT_TRUE(s.ok()) << s.error().message();
  }

  Fd ConnectUnix(const std::string& path) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    return fd;
  }
  Fd ListenUnix(const std::string& path) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd.get(), 16), 0);
    return fd;
  }
  static void WriteStr(const Fd& fd, std::string_view s) {
    ASSERT_EQ(::send(fd.get(), s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Reads what is there within `ms` (empty on timeout); "<EOF>" when the peer closed.
  static std::string ReadSome(const Fd& fd, int ms = 1000) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return "";
    char buf[65536];
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return "<EOF>";
    if (n < 0) return "<ERR " + std::string(std::strerror(errno)) + ">";
    return std::string(buf, static_cast<size_t>(n));
  }

  // The device closed the socket: EOF, or a reset when it closed with bytes unread.
  static bool Closed(const Fd& fd) {
    std::string s = ReadSome(fd);
    return s == "<EOF>" || s == "<ERR Connection reset by peer>";
  }

  // Pumps the device (as the VMM loop would) and collects the guest's RX packets.
  std::vector<VsockPacket> Pump() {
    guest_->PollHost();
    return guest_->Receive();
  }
  // Pumps until at least one packet arrives or `ms` pass.
  std::vector<VsockPacket> PumpUntilPacket(int ms = 1000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      auto p = Pump();
      if (!p.empty() || std::chrono::steady_clock::now() > deadline) return p;
      pollfd pfd{vsock_->epoll_fd(), POLLIN, 0};
      (void)::poll(&pfd, 1, 10);
    }
  }

  // Pumps the device (no packet may reach the guest meanwhile) until it closes `host`: EOF no
  // sooner than `timeout` after `start`, and well within a few seconds.
  void ExpectClosedAfterTheTimeout(const Fd& host, std::chrono::steady_clock::time_point start,
                                   std::chrono::milliseconds timeout) {
    std::string got;
    while (got.empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
      EXPECT_TRUE(PumpUntilPacket(50).empty()) << "a packet reached the guest";
      got = ReadSome(host, 0);
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(got, "<EOF>");
    EXPECT_GE(waited, timeout);
    EXPECT_LT(waited, timeout + std::chrono::seconds(3));
  }

  // Host connects with CONNECT <port>, guest accepts: returns the host socket and the
  // device's port for the connection.
  std::pair<Fd, uint32_t> HostConnect(uint32_t guest_port, uint32_t guest_buf = 256 * 1024) {
    Fd host = ConnectUnix(uds_);
    WriteStr(host, "CONNECT " + std::to_string(guest_port) + "\n");
    auto pkts = PumpUntilPacket();
    EXPECT_EQ(pkts.size(), 1u);
    if (pkts.empty()) return {std::move(host), 0};
    const VsockHeader& req = pkts[0].header;
    EXPECT_EQ(req.op, kVsockOpRequest);
    EXPECT_EQ(req.src_cid, kVsockHostCid);
    EXPECT_EQ(req.dst_cid, kCid);
    EXPECT_EQ(req.dst_port, guest_port);
    EXPECT_EQ(req.type, kVsockTypeStream);
    guest_->Send(guest_->Header(kVsockOpResponse, guest_port, req.src_port, 0, guest_buf));
    EXPECT_EQ(ReadSome(host), "OK " + std::to_string(req.src_port) + "\n");
    return {std::move(host), req.src_port};
  }

  std::string dir_, uds_;
  std::optional<GuestMemory> memory_;
  std::unique_ptr<Vsock> vsock_;
  std::unique_ptr<VsockGuest> guest_;
};

TEST_F(VsockTest, OffersStreamDeviceWithGuestCid) {
  MakeDevice();
  EXPECT_EQ(vsock_->device_type(), kVirtioIdVsock);
  EXPECT_EQ(vsock_->queue_max_sizes().size(), 3u);
  EXPECT_TRUE(vsock_->device_features() & kVirtioFVersion1);
  uint8_t config[12];
  vsock_->ReadConfig(0, config);
  uint64_t cid;
  std::memcpy(&cid, config, 8);
  EXPECT_EQ(cid, kCid);
  EXPECT_EQ(config[8], 0);
  uint8_t hi[4];
  vsock_->ReadConfig(4, hi);
  EXPECT_EQ(hi[0], 0);
}

TEST_F(VsockTest, CreateRejectsBadOptions) {
  auto bad_cid = Vsock::Create(VsockOptions{2, uds_});
  ASSERT_FALSE(bad_cid.ok());
  EXPECT_NE(bad_cid.error().message().find("guest_cid 2"), std::string::npos);
  auto long_path = Vsock::Create(VsockOptions{3, "/tmp/" + std::string(120, 'x')});
  ASSERT_FALSE(long_path.ok());
  EXPECT_NE(long_path.error().message().find("uds_path"), std::string::npos);
  auto no_dir = Vsock::Create(VsockOptions{3, dir_ + "/missing/v.sock"});
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.error().message().find("bind"), std::string::npos);
  MakeDevice();
  // The path is taken.
  auto taken = Vsock::Create(VsockOptions{4, uds_});
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.error().message().find("Address already in use"), std::string::npos)
      << taken.error().message();
}

TEST_F(VsockTest, HostConnectRelaysBothWays) {
  MakeDevice();
  Fd host = ConnectUnix(uds_);
  // Bytes right behind the line belong to the stream.
  WriteStr(host, "CONNECT 52\nhello");
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  ASSERT_EQ(pkts[0].header.op, kVsockOpRequest);
  const uint32_t host_port = pkts[0].header.src_port;
  EXPECT_GE(host_port, 1u << 30);
  EXPECT_EQ(pkts[0].header.buf_alloc, kConnBufAlloc);
  EXPECT_EQ(ReadSome(host, 50), "");  // No OK before the guest accepts.
  guest_->Send(guest_->Header(kVsockOpResponse, 52, host_port));
  EXPECT_EQ(ReadSome(host), "OK " + std::to_string(host_port) + "\n");
  pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRw);
  EXPECT_EQ(pkts[0].header.dst_port, 52u);
  EXPECT_EQ(std::string(pkts[0].payload.begin(), pkts[0].payload.end()), "hello");
  guest_->Send(guest_->Header(kVsockOpRw, 52, host_port, 5), "world");
  EXPECT_EQ(ReadSome(host), "world");
  WriteStr(host, "more");
  pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(std::string(pkts[0].payload.begin(), pkts[0].payload.end()), "more");
  EXPECT_EQ(vsock_->metrics().active_connections, 1u);
}

TEST_F(VsockTest, GuestRefusalClosesHostSocket) {
  MakeDevice();
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONNECT 7777\n");
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  guest_->Send(guest_->Header(kVsockOpRst, 7777, pkts[0].header.src_port));
  EXPECT_EQ(ReadSome(host), "<EOF>");
  EXPECT_EQ(vsock_->connection_count(), 0u);
}

TEST_F(VsockTest, UnansweredRequestTimesOut) {
  MakeDevice(/*connect_timeout_us=*/100'000);
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONNECT 9\n");
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  // The timer fires on the device's epoll fd; the guest gets a RST and the host EOF.
  pkts = PumpUntilPacket(2000);
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
  EXPECT_EQ(ReadSome(host), "<EOF>");
}

TEST_F(VsockTest, BadConnectLinesCloseTheHostSocket) {
  MakeDevice();
  for (std::string line : std::vector<std::string>{"GET / HTTP/1.0\r\n", "CONNECT 4294967296\n", "CONNECT x\n",
                           "CONNECT " + std::string(40, '1')}) {
    Fd host = ConnectUnix(uds_);
    WriteStr(host, line);
    guest_->PollHost();
    EXPECT_TRUE(Closed(host)) << line;
  }
  EXPECT_EQ(vsock_->metrics().host_protocol_errors, 4u);
  EXPECT_TRUE(guest_->Receive().empty());
  // A line in pieces is fine, and a client that leaves early costs nothing.
  { Fd gone = ConnectUnix(uds_); }
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONN");
  guest_->PollHost();
  WriteStr(host, "ECT 5\n");
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.dst_port, 5u);
}

TEST_F(VsockTest, GuestConnectReachesHostListener) {
  MakeDevice();
  Fd listener = ListenUnix(uds_ + "_5000");
  guest_->Send(guest_->Header(kVsockOpRequest, 40000, 5000));
  auto pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpResponse);
  EXPECT_EQ(pkts[0].header.src_port, 5000u);
  EXPECT_EQ(pkts[0].header.dst_port, 40000u);
  Fd conn(::accept(listener.get(), nullptr, nullptr));
  ASSERT_TRUE(conn.valid());
  guest_->Send(guest_->Header(kVsockOpRw, 40000, 5000, 3), "abc");
  EXPECT_EQ(ReadSome(conn), "abc");
  WriteStr(conn, "xyz");
  pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(std::string(pkts[0].payload.begin(), pkts[0].payload.end()), "xyz");
}

TEST_F(VsockTest, GuestConnectWithNoListenerIsReset) {
  MakeDevice();
  guest_->Send(guest_->Header(kVsockOpRequest, 40000, 5001));
  auto pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
  EXPECT_EQ(pkts[0].header.src_port, 5001u);
  EXPECT_EQ(pkts[0].header.dst_port, 40000u);
  EXPECT_EQ(vsock_->metrics().connections_refused, 1u);
  // Packets for connections that do not exist are reset too; RSTs are not answered.
  guest_->Send(guest_->Header(kVsockOpRw, 40001, 5001, 1), "x");
  guest_->Send(guest_->Header(kVsockOpRst, 40002, 5001));
  pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
  EXPECT_EQ(pkts[0].header.dst_port, 40001u);
}

TEST_F(VsockTest, MalformedPacketsAreDroppedOrReset) {
  MakeDevice();
  VsockHeader h = guest_->Header(kVsockOpRequest, 1, 2);
  h.src_cid = 99;
  guest_->Send(h);
  h = guest_->Header(kVsockOpRw, 1, 2, 100);  // Claims 100 bytes, carries 3.
  guest_->Send(h, "abc");
  // A header split across descriptors and a too-short chain.
  auto& tx = guest_->tx_driver();
  uint64_t tiny = tx.Alloc(8);
  guest_->SendRaw({{tiny, 8, false}});
  EXPECT_EQ(vsock_->metrics().tx_dropped, 3u);
  EXPECT_TRUE(Pump().empty());
  h = guest_->Header(kVsockOpRequest, 1, 2);
  h.type = 2;  // SEQPACKET
  guest_->Send(h);
  auto pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
  EXPECT_EQ(guest_->interrupt().needs_reset, 0u);
  // Every chain came back.
  EXPECT_EQ(guest_->tx_used(), 4);
}

TEST_F(VsockTest, HeaderSplitAcrossDescriptorsIsParsed) {
  MakeDevice();
  Fd listener = ListenUnix(uds_ + "_6000");
  VsockHeader h = guest_->Header(kVsockOpRequest, 1, 6000);
  auto& tx = guest_->tx_driver();
  const auto* bytes = reinterpret_cast<const uint8_t*>(&h);
  uint64_t a = tx.AllocWith(std::span(bytes, 20));
  uint64_t b = tx.AllocWith(std::span(bytes + 20, 24));
  guest_->SendRaw({{a, 20, false}, {b, 24, false}});
  auto pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpResponse);
}

TEST_F(VsockTest, HostToGuestRespectsGuestCredit) {
  MakeDevice();
  auto [host, port] = HostConnect(52, /*guest_buf=*/8192);
  std::string data(64 * 1024, 'q');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  WriteStr(host, data);
  std::string got;
  std::vector<VsockPacket> pkts;
  for (int i = 0; i < 20; ++i) {
    for (auto& p : Pump()) pkts.push_back(std::move(p));
  }
  bool credit_request = false;
  for (auto& p : pkts) {
    if (p.header.op == kVsockOpRw) got.append(p.payload.begin(), p.payload.end());
    if (p.header.op == kVsockOpCreditRequest) credit_request = true;
  }
  EXPECT_EQ(got.size(), 8192u);  // Exactly the guest's buffer.
  EXPECT_TRUE(credit_request);
  // The guest read it all: a credit update lets the rest through.
  uint32_t fwd = 8192;
  while (got.size() < data.size()) {
    guest_->Send(guest_->Header(kVsockOpCreditUpdate, 52, port, 0, 8192, fwd));
    size_t before = got.size();
    for (auto& p : Pump()) {
      if (p.header.op == kVsockOpRw) got.append(p.payload.begin(), p.payload.end());
    }
    ASSERT_GT(got.size(), before);
    ASSERT_LE(got.size() - fwd, 8192u);
    fwd = static_cast<uint32_t>(got.size());
  }
  EXPECT_TRUE(got == data);
}

TEST_F(VsockTest, SlowHostReaderBoundsBufferingAndGuestOverrunIsReset) {
  MakeDevice();
  auto [host, port] = HostConnect(52);
  // The host never reads: its socket buffer fills, then the device holds up to its credit,
  // then a guest that ignores the credit is reset.
  std::string chunk(kVsockMaxPayload, 'z');
  uint64_t sent = 0;
  bool reset = false;
  for (int i = 0; i < 200 && !reset; ++i) {
    guest_->Send(guest_->Header(kVsockOpRw, 52, port, kVsockMaxPayload), chunk);
    sent += chunk.size();
    for (auto& p : Pump()) reset |= p.header.op == kVsockOpRst;
  }
  EXPECT_TRUE(reset);
  EXPECT_EQ(vsock_->connection_count(), 0u);
  EXPECT_LT(sent, 8u << 20);
}

TEST_F(VsockTest, StalledHostDoesNotStallOtherConnections) {
  MakeDevice();
  auto [stalled, stalled_port] = HostConnect(52);
  auto [live, live_port] = HostConnect(53);
  // The guest fills the stalled connection up to the device's credit, as Linux would (the
  // host never reads): first the host socket's buffer, then the device's bounded one.
  std::string chunk(kVsockMaxPayload, 's');
  uint32_t sent = 0, device_fwd = 0;
  for (int round = 0; round < 100; ++round) {
    for (auto& p : Pump()) {
      if (p.header.dst_port == 52) device_fwd = p.header.fwd_cnt;
    }
    if (sent - device_fwd + kVsockMaxPayload > kConnBufAlloc) break;
    guest_->Send(guest_->Header(kVsockOpRw, 52, stalled_port, kVsockMaxPayload), chunk);
    sent += kVsockMaxPayload;
  }
  EXPECT_EQ(vsock_->connection_count(), 2u) << "a guest within its credit was reset";
  EXPECT_GT(sent, kConnBufAlloc);
  for (int i = 0; i < 100; ++i) {
    std::string msg = "ping " + std::to_string(i);
    guest_->Send(guest_->Header(kVsockOpRw, 53, live_port, static_cast<uint32_t>(msg.size())), msg);
    ASSERT_EQ(ReadSome(live), msg);
    WriteStr(live, "pong");
    auto pkts = PumpUntilPacket();
    ASSERT_EQ(pkts.size(), 1u);
    EXPECT_EQ(pkts[0].header.dst_port, 53u);
    EXPECT_EQ(std::string(pkts[0].payload.begin(), pkts[0].payload.end()), "pong");
  }
}

TEST_F(VsockTest, CreditUpdatesFlowAsTheHostReads) {
  MakeDevice();
  auto [host, port] = HostConnect(52);
  std::string chunk(kVsockMaxPayload, 'c');
  uint32_t last_fwd = 0;
  for (int i = 0; i < 16; ++i) {
    guest_->Send(guest_->Header(kVsockOpRw, 52, port, kVsockMaxPayload), chunk);
    std::string got;
    while (got.size() < chunk.size()) {
      std::string s = ReadSome(host);
      ASSERT_FALSE(s.empty());
      got += s;
    }
    for (auto& p : Pump()) {
      if (p.header.op == kVsockOpCreditUpdate) last_fwd = p.header.fwd_cnt;
    }
  }
  // The guest was told about (nearly) everything forwarded, so it never stalls.
  EXPECT_GE(last_fwd, 16u * kVsockMaxPayload - kCreditUpdateThreshold);
  EXPECT_EQ(vsock_->connection_count(), 1u);
}

TEST_F(VsockTest, GuestCloseResetsAndClosesHost) {
  MakeDevice();
  auto [host, port] = HostConnect(52);
  VsockHeader h = guest_->Header(kVsockOpShutdown, 52, port);
  h.flags = kVsockShutdownBoth;
  guest_->Send(h);
  auto pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
  EXPECT_EQ(ReadSome(host), "<EOF>");
  // The host writing into a closed connection gets EPIPE; nothing reaches the guest.
  EXPECT_LT(::send(host.get(), "x", 1, MSG_NOSIGNAL), 0);
  EXPECT_TRUE(Pump().empty());
}

TEST_F(VsockTest, GuestHalfCloseShutsHostWriteSide) {
  MakeDevice();
  auto [host, port] = HostConnect(52);
  VsockHeader h = guest_->Header(kVsockOpShutdown, 52, port);
  h.flags = kVsockShutdownSend;
  guest_->Send(h);
  EXPECT_EQ(ReadSome(host), "<EOF>");
  // The other direction still works.
  WriteStr(host, "still here");
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(std::string(pkts[0].payload.begin(), pkts[0].payload.end()), "still here");
  // Then the host finishes too: the connection ends with RST.
  ::shutdown(host.get(), SHUT_WR);
  pkts = PumpUntilPacket();
  ASSERT_FALSE(pkts.empty());
  EXPECT_EQ(pkts.back().header.op, kVsockOpRst);
  EXPECT_EQ(vsock_->connection_count(), 0u);
}

TEST_F(VsockTest, HostCloseSendsShutdown) {
  MakeDevice();
  auto [host, port] = HostConnect(52);
  WriteStr(host, "bye");
  host.Reset();
  std::vector<VsockPacket> pkts;
  for (int i = 0; i < 5 && pkts.size() < 2; ++i) {
    for (auto& p : PumpUntilPacket()) pkts.push_back(std::move(p));
  }
  ASSERT_EQ(pkts.size(), 2u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRw);
  EXPECT_EQ(pkts[1].header.op, kVsockOpShutdown);
  EXPECT_EQ(pkts[1].header.flags, kVsockShutdownBoth);
  // The guest answers with RST (Linux does when it has read everything): gone.
  guest_->Send(guest_->Header(kVsockOpRst, 52, port));
  EXPECT_EQ(vsock_->connection_count(), 0u);
}

// Fault injection: the host program at the other end of a connection is killed (SIGKILL) while
// the guest is sending to it and it has not read everything: the kernel resets the UNIX socket,
// the device resets the guest's connection, and the device goes on serving new connections.
TEST_F(VsockTest, HostPeerKilledMidTransferResetsTheGuest) {
  MakeDevice();
  auto [host, port] = HostConnect(52);
  ASSERT_NE(port, 0u);
  // The peer is a process of its own holding the only copy of the host socket; it never reads.
  const pid_t peer = ::fork();
  ASSERT_GE(peer, 0);
  if (peer == 0) {
    for (;;) ::pause();
  }
  host.Reset();
  std::string chunk(kVsockMaxPayload, 'k');
  bool reset = false;
  for (int i = 0; i < 4; ++i) {
    guest_->Send(guest_->Header(kVsockOpRw, 52, port, chunk.size()), chunk);
    for (auto& p : Pump()) reset |= p.header.op == kVsockOpRst;
  }
  EXPECT_FALSE(reset) << "reset before the peer died";
  ASSERT_EQ(::kill(peer, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(peer, &status, 0), peer);
  // More data from the guest, mid-transfer: the dead peer's socket fails and the guest is told.
  std::vector<VsockPacket> got;
  for (int i = 0; i < 20 && !reset; ++i) {
    guest_->Send(guest_->Header(kVsockOpRw, 52, port, chunk.size()), chunk);
    for (auto& p : PumpUntilPacket(100)) {
      EXPECT_EQ(p.header.dst_port, 52u);
      reset |= p.header.op == kVsockOpRst;
      got.push_back(std::move(p));
    }
  }
  EXPECT_TRUE(reset) << "the guest got no RST after its peer was killed (" << got.size()
                     << " packets)";
  EXPECT_EQ(vsock_->connection_count(), 0u);
  // The device goes on: a new host connection works end to end.
  auto [again, port2] = HostConnect(53);
  ASSERT_NE(port2, 0u);
  guest_->Send(guest_->Header(kVsockOpRw, 53, port2, 5), "alive");
  (void)Pump();
  EXPECT_EQ(ReadSome(again), "alive");
}

TEST_F(VsockTest, TransportResetDropsConnectionsAndTellsTheGuest) {
  MakeDevice();
  auto [a, port_a] = HostConnect(52);
  auto [b, port_b] = HostConnect(53);
  EXPECT_EQ(vsock_->connection_count(), 2u);
  vsock_->TransportReset();
  EXPECT_EQ(guest_->Events(), std::vector<uint32_t>{kVsockEventTransportReset});
  EXPECT_EQ(vsock_->connection_count(), 0u);
  EXPECT_EQ(ReadSome(a), "<EOF>");
  EXPECT_EQ(ReadSome(b), "<EOF>");
  // The listener survives: new connections work.
  auto [c, port_c] = HostConnect(52);
  EXPECT_NE(port_c, 0u);
}

// A host CONNECT right after a TRANSPORT_RESET waits until the guest has taken the event
// (refilled and kicked its event queue): offered earlier, the guest's reset handling would
// reset the new connection too.
TEST_F(VsockTest, HostConnectWaitsUntilTheGuestTookTheReset) {
  MakeDevice();
  vsock_->TransportReset();
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONNECT 52\n");
  EXPECT_TRUE(PumpUntilPacket(300).empty()) << "the request was offered before the guest took the reset";
  EXPECT_EQ(vsock_->SaveState()[17], 2);
  EXPECT_EQ(guest_->Events(), std::vector<uint32_t>{kVsockEventTransportReset});  // Refills, kicks.
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRequest);
  EXPECT_EQ(pkts[0].header.dst_port, 52u);
  EXPECT_EQ(vsock_->SaveState()[17], 0);
}

// After a snapshot or restore a guest that never takes the TRANSPORT_RESET (no driver work,
// hung) does not hold host CONNECTs forever: they get the connect timeout, then EOF.
TEST_F(VsockTest, HostConnectBehindAnUntakenResetTimesOut) {
  MakeDevice(/*connect_timeout_us=*/300'000);
  vsock_->TransportReset();  // The guest never refills its event queue.
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONNECT 52\n");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(PumpUntilPacket(100).empty());
  EXPECT_EQ(vsock_->metrics().connections_refused, 0u);
  // The device's timer (on its epoll fd) closes the parked socket after the timeout.
  ExpectClosedAfterTheTimeout(host, start, std::chrono::milliseconds(300));
  EXPECT_EQ(vsock_->metrics().connections_refused, 1u);
  EXPECT_EQ(vsock_->connection_count(), 0u);
  // The guest takes the reset later: nothing stale is offered, and new CONNECTs work at once.
  EXPECT_EQ(guest_->Events(), std::vector<uint32_t>{kVsockEventTransportReset});
  EXPECT_TRUE(PumpUntilPacket(100).empty());
  auto [again, port] = HostConnect(52);
  EXPECT_NE(port, 0u);
}

// A host client that connects and never finishes its CONNECT line does not hold one of
// max_connections forever: closed after the connect timeout, counted as a protocol error, and
// the slot serves a new client.
TEST_F(VsockTest, HostClientThatNeverSendsItsConnectLineIsClosed) {
  MakeDevice(/*connect_timeout_us=*/300'000, /*max_connections=*/1);
  Fd silent = ConnectUnix(uds_);
  Fd partial = ConnectUnix(uds_);
  WriteStr(partial, "CONNECT 5");  // No newline, ever.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(PumpUntilPacket(100).empty());
  // The second client was refused at once (one slot); the first is still held.
  EXPECT_TRUE(Closed(partial));
  EXPECT_EQ(vsock_->metrics().connections_refused, 1u);
  EXPECT_EQ(ReadSome(silent, 0), "");
  ExpectClosedAfterTheTimeout(silent, start, std::chrono::milliseconds(300));
  EXPECT_EQ(vsock_->metrics().host_protocol_errors, 1u);
  // The slot is free again: a client that does send its line gets the guest.
  auto [again, port] = HostConnect(52);
  EXPECT_NE(port, 0u);
}

// A client that sends its line in pieces within the timeout is served normally.
TEST_F(VsockTest, ConnectLineInPiecesWithinTheTimeoutIsServed) {
  MakeDevice(/*connect_timeout_us=*/2'000'000);
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONN");
  EXPECT_TRUE(PumpUntilPacket(100).empty());
  WriteStr(host, "ECT 5");
  EXPECT_TRUE(PumpUntilPacket(100).empty());
  WriteStr(host, "2\n");
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRequest);
  EXPECT_EQ(pkts[0].header.dst_port, 52u);
  EXPECT_EQ(vsock_->metrics().host_protocol_errors, 0u);
}

// A CONNECT parked behind the reset keeps what is left of its timeout once offered: the total
// wait for "OK" is bounded by the connect timeout, not twice it.
TEST_F(VsockTest, AParkedConnectKeepsItsDeadlineWhenOffered) {
  MakeDevice(/*connect_timeout_us=*/600'000);
  vsock_->TransportReset();
  Fd host = ConnectUnix(uds_);
  WriteStr(host, "CONNECT 52\n");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(PumpUntilPacket(300).empty());
  EXPECT_EQ(guest_->Events(), std::vector<uint32_t>{kVsockEventTransportReset});
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRequest);
  // The guest never answers: RST and EOF at the original deadline.
  pkts = PumpUntilPacket(3000);
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
  EXPECT_EQ(ReadSome(host), "<EOF>");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1100));
}

TEST_F(VsockTest, TransportResetWaitsForAnEventBuffer) {
  auto v = Vsock::Create(VsockOptions{kCid, uds_});
  ASSERT_TRUE(v.ok());
  vsock_ = std::move(v).value();
  guest_ = std::make_unique<VsockGuest>(*memory_, *vsock_);
  guest_->initial_event_buffers = 0;
  ASSERT_TRUE(guest_->Activate().ok());
  auto [a, port] = HostConnect(52);
  vsock_->TransportReset();
  EXPECT_TRUE(guest_->Events().empty());
  EXPECT_TRUE(Closed(a));
  // Delivered once the guest posts a buffer, exactly once.
  guest_->PostEventBuffer();
  EXPECT_EQ(guest_->Events(), std::vector<uint32_t>{kVsockEventTransportReset});
  guest_->PostEventBuffer();
  EXPECT_TRUE(guest_->Events().empty());
}

// A snapshot taken while the guest had no event buffer keeps the TRANSPORT_RESET pending in the
// device state; the restored device delivers it once re-activated, exactly once.
TEST_F(VsockTest, PendingTransportResetSurvivesSaveStateRestoreState) {
  auto v = Vsock::Create(VsockOptions{kCid, uds_});
  ASSERT_TRUE(v.ok());
  vsock_ = std::move(v).value();
  guest_ = std::make_unique<VsockGuest>(*memory_, *vsock_);
  guest_->initial_event_buffers = 0;
  ASSERT_TRUE(guest_->Activate().ok());
  auto [a, port] = HostConnect(52);
  vsock_->TransportReset();
  EXPECT_TRUE(vsock_->event_pending());
  const std::vector<uint8_t> saved = vsock_->SaveState();
  EXPECT_TRUE(Closed(a));
  guest_.reset();
  vsock_.reset();

  // A fresh guest memory (the restored VM's) and a device rebuilt from the configuration.
  auto memory = GuestMemory::Create({{0, 32 << 20}});
  ASSERT_TRUE(memory.ok());
  memory_.emplace(std::move(memory).value());
  auto rebuilt = Vsock::Create(VsockOptions{kCid, uds_});
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message();
  vsock_ = std::move(rebuilt).value();
  Status restored = vsock_->RestoreState(saved);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  EXPECT_TRUE(vsock_->event_pending());
  guest_ = std::make_unique<VsockGuest>(*memory_, *vsock_);
  ASSERT_TRUE(guest_->Activate().ok());
  // Activate (on the vCPU thread) only wakes the event loop, which delivers the event.
  EXPECT_TRUE(guest_->Events().empty());
  EXPECT_TRUE(vsock_->event_pending());
  guest_->PollHost();
  EXPECT_EQ(guest_->Events(), std::vector<uint32_t>{kVsockEventTransportReset});
  EXPECT_FALSE(vsock_->event_pending());
  guest_->PostEventBuffer();
  EXPECT_TRUE(guest_->Events().empty());
  // The device works: a host CONNECT reaches the guest as a REQUEST, from a port the guest
  // never saw before the snapshot.
  auto [b, port_b] = HostConnect(53);
  EXPECT_NE(port_b, 0u);
  EXPECT_NE(port_b, port);
}

std::string ErrorText(const Status& s) { return s.ok() ? "<ok>" : s.error().message(); }
#define EXPECT_ERROR_CONTAINS(expr, fragment)                                        \
  do {                                                                               \
    const std::string text = ErrorText(expr);                                        \
    EXPECT_NE(text.find(fragment), std::string::npos) << text << " lacks " << fragment; \
  } while (0)

TEST_F(VsockTest, RestoreStateRejectsBadBytes) {
  auto v = Vsock::Create(VsockOptions{kCid, uds_});
  ASSERT_TRUE(v.ok());
  vsock_ = std::move(v).value();
  const std::vector<uint8_t> good = vsock_->SaveState();
  ASSERT_EQ(good.size(), 22u);
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(std::vector<uint8_t>(good.begin(), good.end() - 1)),
                        "vsock state: 21 bytes, expected 22");
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(std::span<const uint8_t>()), "vsock state: 0 bytes");
  auto bad = good;
  bad[0] = 9;
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(bad), "vsock state: version 9");
  bad = good;
  bad[1] = 77;  // guest_cid low byte
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(bad), "guest_cid 77, the device was rebuilt with 3");
  bad = good;
  bad[9 + 5] = 0x01;  // acked feature bit 40
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(bad), "acked features");
  bad = good;
  bad[17] = 3;
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(bad), "invalid event flag");
  bad = good;
  bad[21] = 0;  // next host port below 1 << 30
  EXPECT_ERROR_CONTAINS(vsock_->RestoreState(bad), "next host port");
  EXPECT_TRUE(vsock_->RestoreState(good).ok());
}

TEST_F(VsockTest, UselessRxChainsAreReturnedEmpty) {
  auto v = Vsock::Create(VsockOptions{kCid, uds_});
  ASSERT_TRUE(v.ok());
  vsock_ = std::move(v).value();
  guest_ = std::make_unique<VsockGuest>(*memory_, *vsock_, 4096, /*rx_buffers=*/0);
  ASSERT_TRUE(guest_->Activate().ok());
  auto& rx = guest_->rx_driver();
  // Too small for a header, read-only, then a good one.
  rx.AddChain({{rx.Alloc(16), 16, true}});
  rx.AddChain({{rx.Alloc(100), 100, false}});
  const uint64_t good = rx.Alloc(4096);
  rx.AddChain({{good, 4096, true}});
  // A REQUEST to a port nothing listens on: the RST needs an RX buffer.
  guest_->Send(guest_->Header(kVsockOpRequest, 1, 9999));
  auto used = rx.UsedSince(0);
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(used[0].len, 0u);
  EXPECT_EQ(used[1].len, 0u);
  EXPECT_EQ(used[2].len, kVsockHeaderSize);
  auto rst = memory_->ReadObj<VsockHeader>(good);
  ASSERT_TRUE(rst.ok());
  EXPECT_EQ(rst->op, kVsockOpRst);
  EXPECT_EQ(vsock_->metrics().malformed_chains, 2u);
  EXPECT_EQ(guest_->interrupt().needs_reset, 0u);
}

TEST_F(VsockTest, ManyConnectionsStayIndependent) {
  MakeDevice();
  constexpr int kConns = 100;
  std::vector<Fd> hosts;
  std::vector<uint32_t> ports;
  for (int i = 0; i < kConns; ++i) {
    auto [fd, port] = HostConnect(1000 + i);
    hosts.push_back(std::move(fd));
    ports.push_back(port);
  }
  for (int i = 0; i < kConns; ++i) WriteStr(hosts[i], "conn " + std::to_string(i));
  std::map<uint32_t, std::string> got;
  for (int round = 0; round < 50 && got.size() < kConns; ++round) {
    for (auto& p : PumpUntilPacket()) got[p.header.dst_port] += std::string(p.payload.begin(), p.payload.end());
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kConns));
  for (int i = 0; i < kConns; ++i) EXPECT_EQ(got[1000 + i], "conn " + std::to_string(i));
  for (int i = 0; i < kConns; ++i) {
    std::string s = "reply " + std::to_string(i);
    guest_->Send(guest_->Header(kVsockOpRw, 1000 + i, ports[i], static_cast<uint32_t>(s.size())), s);
  }
  for (int i = 0; i < kConns; ++i) EXPECT_EQ(ReadSome(hosts[i]), "reply " + std::to_string(i));
}

TEST_F(VsockTest, IdleConnectionsStaySmall) {
  // 1000 idle connections: no per-connection buffers are held (memory stays flat).
  rlimit nofile{4096, 4096};
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) GTEST_SKIP() << "cannot raise RLIMIT_NOFILE";
  MakeDevice();
  constexpr int kConns = 1000;
  std::vector<Fd> hosts;
  hosts.reserve(kConns);
  // Warm up allocator pools and the maps' first buckets.
  { auto warm = HostConnect(1); hosts.push_back(std::move(warm.first)); }
  const size_t before = ::mallinfo2().uordblks;
  for (int i = 1; i < kConns; ++i) {
    auto [fd, port] = HostConnect(1000 + i);
    ASSERT_NE(port, 0u);
    hosts.push_back(std::move(fd));
  }
  const size_t after = ::mallinfo2().uordblks;
  EXPECT_EQ(vsock_->connection_count(), static_cast<size_t>(kConns));
  const double per_conn = static_cast<double>(after - before) / (kConns - 1);
  EXPECT_LT(per_conn, 1024.0) << "bytes of heap per idle connection";
  RecordProperty("heap_bytes_per_idle_connection", std::to_string(per_conn));
}

TEST_F(VsockTest, ConnectionLimitRefusesExtraHosts) {
  MakeDevice(5'000'000, /*max_connections=*/2);
  auto [a, pa] = HostConnect(1);
  auto [b, pb] = HostConnect(2);
  Fd c = ConnectUnix(uds_);
  WriteStr(c, "CONNECT 3\n");
  guest_->PollHost();
  EXPECT_TRUE(Closed(c));
  guest_->Send(guest_->Header(kVsockOpRequest, 9, 9));
  auto pkts = Pump();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRst);
}

TEST_F(VsockTest, ResetDropsEverythingAndReactivates) {
  MakeDevice();
  auto [a, port] = HostConnect(52);
  vsock_->Reset();
  EXPECT_FALSE(vsock_->activated());
  EXPECT_EQ(ReadSome(a), "<EOF>");
  // A host client before the driver is back waits in the backlog.
  Fd early = ConnectUnix(uds_);
  WriteStr(early, "CONNECT 60\n");
  guest_->PollHost();
  guest_ = std::make_unique<VsockGuest>(*memory_, *vsock_);
  ASSERT_TRUE(guest_->Activate().ok());
  // Activate runs on the vCPU thread (no socket calls under its seccomp policy): the waiting
  // client is served by the event loop's next poll, not by Activate itself.
  EXPECT_TRUE(guest_->Receive().empty());
  auto pkts = PumpUntilPacket();
  ASSERT_EQ(pkts.size(), 1u);
  EXPECT_EQ(pkts[0].header.op, kVsockOpRequest);
  EXPECT_EQ(pkts[0].header.dst_port, 60u);
}

TEST_F(VsockTest, StateSaveRestoreRoundTrip) {
  MakeDevice();
  VsockState state = vsock_->Save();
  EXPECT_EQ(state.guest_cid, kCid);
  EXPECT_EQ(state.uds_path, uds_);
  EXPECT_EQ(state.acked_features, kVirtioFVersion1);
  guest_.reset();
  vsock_.reset();
  struct stat st;
  EXPECT_NE(::stat(uds_.c_str(), &st), 0) << "the socket file outlived the device";
  auto restored = Vsock::Restore(state);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  VsockState again = (*restored)->Save();
  EXPECT_EQ(again.guest_cid, state.guest_cid);
  EXPECT_EQ(again.uds_path, state.uds_path);
  EXPECT_EQ(again.acked_features, state.acked_features);
  restored->reset();
  state.acked_features |= 1ull << 40;
  auto bad = Vsock::Restore(state);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("acked features"), std::string::npos);
  state.acked_features = kVirtioFVersion1;
  state.guest_cid = 1;
  EXPECT_FALSE(Vsock::Restore(state).ok());
}

TEST_F(VsockTest, BrokenRingNeedsReset) {
  MakeDevice();
  // A descriptor pointing outside guest memory breaks the ring (DEVICE_NEEDS_RESET), not the
  // VMM.
  auto& tx = guest_->tx_driver();
  tx.WriteDescriptor(200, VirtqDesc{1ull << 40, 44, 0, 0});
  tx.PublishHead(200);
  guest_->KickTx();
  EXPECT_EQ(vsock_->metrics().malformed_chains, 1u);
}

}  // namespace
}  // namespace hearth
