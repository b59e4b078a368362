// The TX header checks and the host's CONNECT line parser: every byte here is hostile.
#include "virtio/vsock/packet.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth {
namespace {

constexpr uint64_t kGuestCid = 3;

VsockHeader Rw(uint32_t len) {
  VsockHeader h{};
  h.src_cid = kGuestCid;
  h.dst_cid = kVsockHostCid;
  h.src_port = 1000;
  h.dst_port = 2000;
  h.len = len;
  h.type = kVsockTypeStream;
  h.op = kVsockOpRw;
  return h;
}

TEST(VsockPacket, HeaderIs44Bytes) { EXPECT_EQ(sizeof(VsockHeader), 44u); }

TEST(VsockPacket, AcceptsWellFormedPackets) {
  EXPECT_EQ(CheckTxHeader(Rw(100), kGuestCid, 144, false).verdict, TxVerdict::kAccept);
  EXPECT_EQ(CheckTxHeader(Rw(0), kGuestCid, 44, false).verdict, TxVerdict::kAccept);
  // The chain may carry more than the header says (Linux never does; harmless).
  EXPECT_EQ(CheckTxHeader(Rw(10), kGuestCid, 200, false).verdict, TxVerdict::kAccept);
  for (uint16_t op : {kVsockOpRequest, kVsockOpResponse, kVsockOpRst, kVsockOpShutdown,
                      kVsockOpCreditUpdate, kVsockOpCreditRequest}) {
    VsockHeader h = Rw(0);
    h.op = op;
    EXPECT_EQ(CheckTxHeader(h, kGuestCid, 44, false).verdict, TxVerdict::kAccept) << op;
  }
}

TEST(VsockPacket, DropsWrongCids) {
  VsockHeader h = Rw(0);
  h.src_cid = 4;  // Spoofing another guest.
  TxCheck c = CheckTxHeader(h, kGuestCid, 44, false);
  EXPECT_EQ(c.verdict, TxVerdict::kDrop);
  EXPECT_NE(c.reason.find("source CID 4"), std::string::npos) << c.reason;
  h = Rw(0);
  h.dst_cid = 1;
  c = CheckTxHeader(h, kGuestCid, 44, false);
  EXPECT_EQ(c.verdict, TxVerdict::kDrop);
  EXPECT_NE(c.reason.find("destination CID 1"), std::string::npos) << c.reason;
  h.dst_cid = kGuestCid;  // To itself.
  EXPECT_EQ(CheckTxHeader(h, kGuestCid, 44, false).verdict, TxVerdict::kDrop);
}

TEST(VsockPacket, DropsBadLengths) {
  // Shorter than a header.
  EXPECT_EQ(CheckTxHeader(Rw(0), kGuestCid, 43, false).verdict, TxVerdict::kDrop);
  // Says more payload than the chain has.
  TxCheck c = CheckTxHeader(Rw(101), kGuestCid, 144, false);
  EXPECT_EQ(c.verdict, TxVerdict::kDrop);
  EXPECT_NE(c.reason.find("exceeds the chain"), std::string::npos) << c.reason;
  // Larger than any packet may be.
  c = CheckTxHeader(Rw(kVsockMaxPayload + 1), kGuestCid, 44 + kVsockMaxPayload + 1, false);
  EXPECT_EQ(c.verdict, TxVerdict::kDrop);
  EXPECT_EQ(CheckTxHeader(Rw(0xffffffff), kGuestCid, 44, false).verdict, TxVerdict::kDrop);
  // Control packets carry no payload.
  VsockHeader h = Rw(8);
  h.op = kVsockOpRequest;
  EXPECT_EQ(CheckTxHeader(h, kGuestCid, 52, false).verdict, TxVerdict::kDrop);
}

TEST(VsockPacket, DropsChainsWithWritableBuffers) {
  EXPECT_EQ(CheckTxHeader(Rw(0), kGuestCid, 44, true).verdict, TxVerdict::kDrop);
}

TEST(VsockPacket, ResetsUnknownOpsAndTypes) {
  VsockHeader h = Rw(0);
  h.op = 8;
  EXPECT_EQ(CheckTxHeader(h, kGuestCid, 44, false).verdict, TxVerdict::kReset);
  h.op = kVsockOpInvalid;
  EXPECT_EQ(CheckTxHeader(h, kGuestCid, 44, false).verdict, TxVerdict::kReset);
  h = Rw(0);
  h.type = 2;  // SEQPACKET: not offered.
  EXPECT_EQ(CheckTxHeader(h, kGuestCid, 44, false).verdict, TxVerdict::kReset);
  h = Rw(0);
  h.op = kVsockOpShutdown;
  h.flags = 4;
  EXPECT_EQ(CheckTxHeader(h, kGuestCid, 44, false).verdict, TxVerdict::kReset);
}

ConnectLine Parse(std::string_view s) {
  return ParseConnectLine(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(VsockConnectLine, ParsesPortAndLength) {
  ConnectLine l = Parse("CONNECT 52\n");
  ASSERT_EQ(l.kind, ConnectLine::Kind::kConnect);
  EXPECT_EQ(l.port, 52u);
  EXPECT_EQ(l.length, 11u);
  // Stream bytes after the line are not part of it.
  l = Parse("CONNECT 4294967295\nhello");
  ASSERT_EQ(l.kind, ConnectLine::Kind::kConnect);
  EXPECT_EQ(l.port, 4294967295u);
  EXPECT_EQ(l.length, 19u);
  l = Parse("CONNECT 0\n");
  ASSERT_EQ(l.kind, ConnectLine::Kind::kConnect);
  EXPECT_EQ(l.port, 0u);
}

TEST(VsockConnectLine, WaitsForTheRestOfALine) {
  for (std::string_view s : {"", "C", "CONN", "CONNECT", "CONNECT ", "CONNECT 5", "CONNECT 52"}) {
    EXPECT_EQ(Parse(s).kind, ConnectLine::Kind::kIncomplete) << s;
  }
}

TEST(VsockConnectLine, RejectsGarbage) {
  for (std::string_view s : std::initializer_list<std::string_view>{"connect 52\n", "CONNECT\n", "CONNECT \n", "CONNECT 52 \n", "CONNECT -1\n",
        "CONNECT 0x10\n", "CONNECT  52\n", "GET / HTTP/1.1\r\n", "\n", "CONNECT 5\r\n",
        "CONNECTX 5\n", std::string_view("CONNECT 5\0\n", 11)}) {
    ConnectLine l = Parse(s);
    EXPECT_EQ(l.kind, ConnectLine::Kind::kInvalid) << s;
    EXPECT_FALSE(l.error.empty());
  }
}

TEST(VsockConnectLine, RejectsBadPorts) {
  ConnectLine l = Parse("CONNECT 4294967296\n");
  EXPECT_EQ(l.kind, ConnectLine::Kind::kInvalid);
  EXPECT_NE(l.error.find("larger than"), std::string::npos) << l.error;
  EXPECT_EQ(Parse("CONNECT 99999999999999999999999\n").kind, ConnectLine::Kind::kInvalid);
}

TEST(VsockConnectLine, RejectsOverlongLines) {
  // Digits that never end in a newline: refused once the line cannot fit any more.
  std::string s = "CONNECT 000000000000000000000000000052\n";
  ConnectLine l = Parse(s);
  EXPECT_EQ(l.kind, ConnectLine::Kind::kInvalid);
  std::string no_newline = "CONNECT " + std::string(kMaxConnectLine, '1');
  EXPECT_EQ(Parse(no_newline).kind, ConnectLine::Kind::kInvalid);
  std::string zeros = "CONNECT " + std::string(kMaxConnectLine - 8, '0');
  l = Parse(zeros);
  EXPECT_EQ(l.kind, ConnectLine::Kind::kInvalid);
  EXPECT_NE(l.error.find("too long"), std::string::npos) << l.error;
}

TEST(VsockConnectLine, OkLine) { EXPECT_EQ(ConnectOkLine(1073741824), "OK 1073741824\n"); }

}  // namespace
}  // namespace hearth
