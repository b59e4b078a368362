// The connection state machine and credit accounting, without sockets.
#include "virtio/vsock/connection.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

VsockHeader Guest(uint16_t op, uint32_t len = 0, uint32_t buf_alloc = 65536,
                  uint32_t fwd_cnt = 0, uint32_t flags = 0) {
  VsockHeader h{};
  h.src_cid = 3;
  h.dst_cid = 2;
  h.src_port = 1000;
  h.dst_port = 2000;
  h.type = kVsockTypeStream;
  h.op = op;
  h.len = len;
  h.buf_alloc = buf_alloc;
  h.fwd_cnt = fwd_cnt;
  h.flags = flags;
  return h;
}

Connection Established() {
  Connection c = Connection::GuestInitiated(2000, 1000, Guest(kVsockOpRequest));
  c.OnHostConnected();
  return c;
}

TEST(VsockConnection, HostInitiatedSendsRequestAndWaitsForResponse) {
  Connection c = Connection::HostInitiated(1u << 30, 52);
  EXPECT_EQ(c.state(), ConnState::kLocalInit);
  EXPECT_EQ(c.TakeOp(), kConnOpRequest);
  EXPECT_EQ(c.TakeOp(), 0);
  EXPECT_FALSE(c.WantsHostData());
  // Data before the guest accepted is a protocol violation.
  Connection early = Connection::HostInitiated(1u << 30, 52);
  EXPECT_EQ(early.OnGuestPacket(Guest(kVsockOpRw, 10)), ConnAction::kReset);
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpResponse)), ConnAction::kNone);
  EXPECT_EQ(c.state(), ConnState::kEstablished);
  EXPECT_EQ(c.peer_buf_alloc(), 65536u);
  // A second RESPONSE is not.
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpResponse)), ConnAction::kReset);
}

TEST(VsockConnection, GuestRefusalDropsWithoutReply) {
  Connection c = Connection::HostInitiated(1u << 30, 52);
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpRst)), ConnAction::kDrop);
}

TEST(VsockConnection, GuestInitiatedAnswersOnceTheHostAccepts) {
  Connection c = Connection::GuestInitiated(2000, 1000, Guest(kVsockOpRequest, 0, 4096, 0));
  EXPECT_EQ(c.state(), ConnState::kPeerInit);
  EXPECT_EQ(c.pending_ops(), 0u);
  EXPECT_EQ(c.peer_buf_alloc(), 4096u);
  c.OnHostConnected();
  EXPECT_EQ(c.state(), ConnState::kEstablished);
  EXPECT_EQ(c.TakeOp(), kConnOpResponse);
  // A second REQUEST for the same ports resets.
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpRequest)), ConnAction::kReset);
}

TEST(VsockConnection, GuestCreditBoundsWhatItMaySend) {
  Connection c = Established();
  EXPECT_TRUE(c.GuestMaySend(kConnBufAlloc));
  EXPECT_FALSE(c.GuestMaySend(kConnBufAlloc + 1));
  c.RecordReceived(kConnBufAlloc - 10);
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpRw, 10)), ConnAction::kNone);
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpRw, 11)), ConnAction::kReset);
  // Forwarding frees credit.
  c.RecordForwarded(100);
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpRw, 110)), ConnAction::kNone);
}

TEST(VsockConnection, CreditUpdateAfterThresholdForwarded) {
  Connection c = Established();
  (void)c.TakeOp();  // RESPONSE
  VsockHeader h;
  c.FillHeader(h, 3, kVsockOpResponse);
  c.RecordReceived(kCreditUpdateThreshold);
  c.RecordForwarded(kCreditUpdateThreshold - 1);
  EXPECT_EQ(c.pending_ops() & kConnOpCreditUpdate, 0u);
  c.RecordForwarded(1);
  EXPECT_NE(c.pending_ops() & kConnOpCreditUpdate, 0u);
  // Any packet carries fwd_cnt: sending one makes the update unnecessary.
  c.FillHeader(h, 3, kVsockOpRw);
  EXPECT_EQ(h.fwd_cnt, kCreditUpdateThreshold);
  EXPECT_EQ(h.buf_alloc, kConnBufAlloc);
  EXPECT_EQ(h.src_port, 2000u);
  EXPECT_EQ(h.dst_port, 1000u);
  EXPECT_EQ(h.src_cid, 2u);
  EXPECT_EQ(h.dst_cid, 3u);
  EXPECT_EQ(c.pending_ops() & kConnOpCreditUpdate, 0u);
}

TEST(VsockConnection, CreditRequestQueuesUpdate) {
  Connection c = Established();
  (void)c.TakeOp();
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpCreditRequest)), ConnAction::kNone);
  EXPECT_EQ(c.TakeOp(), kConnOpCreditUpdate);
}

TEST(VsockConnection, PeerFreeSpaceFollowsGuestCredit) {
  Connection c = Established();
  c.OnGuestPacket(Guest(kVsockOpCreditUpdate, 0, 1000, 0));
  EXPECT_EQ(c.PeerFreeSpace(), 1000u);
  c.RecordSentToGuest(600);
  EXPECT_EQ(c.PeerFreeSpace(), 400u);
  c.RecordSentToGuest(400);
  EXPECT_EQ(c.PeerFreeSpace(), 0u);
  EXPECT_FALSE(c.WantsHostData());
  c.OnGuestPacket(Guest(kVsockOpCreditUpdate, 0, 1000, 500));
  EXPECT_EQ(c.PeerFreeSpace(), 500u);
  // The guest shrinks its buffer below what is in flight: no credit, no underflow.
  c.OnGuestPacket(Guest(kVsockOpCreditUpdate, 0, 100, 500));
  EXPECT_EQ(c.PeerFreeSpace(), 0u);
  // A lying fwd_cnt (ahead of what was sent) gives no credit either.
  c.OnGuestPacket(Guest(kVsockOpCreditUpdate, 0, 1000, 5000));
  EXPECT_EQ(c.PeerFreeSpace(), 0u);
}

TEST(VsockConnection, CountersWrap) {
  Connection c = Established();
  c.RecordSentToGuest(0xfffffff0u);
  c.OnGuestPacket(Guest(kVsockOpCreditUpdate, 0, 0x100, 0xfffffff0u));
  EXPECT_EQ(c.PeerFreeSpace(), 0x100u);
  c.RecordSentToGuest(0x20);  // tx_cnt wraps to 0x10.
  EXPECT_EQ(c.tx_cnt(), 0x10u);
  EXPECT_EQ(c.PeerFreeSpace(), 0xe0u);
}

TEST(VsockConnection, ShutdownStates) {
  Connection c = Established();
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpShutdown, 0, 65536, 0, kVsockShutdownSend)),
            ConnAction::kNone);
  EXPECT_EQ(c.guest_shutdown(), kVsockShutdownSend);
  // No data after the guest said it sends no more.
  EXPECT_EQ(c.OnGuestPacket(Guest(kVsockOpRw, 1)), ConnAction::kReset);
  Connection r = Established();
  r.OnGuestPacket(Guest(kVsockOpShutdown, 0, 65536, 0, kVsockShutdownRcv));
  r.host_readable = true;
  EXPECT_FALSE(r.WantsHostData());  // The guest reads no more.
  // Shutdown before the connection exists.
  Connection l = Connection::HostInitiated(5, 6);
  EXPECT_EQ(l.OnGuestPacket(Guest(kVsockOpShutdown, 0, 0, 0, 3)), ConnAction::kReset);
}

TEST(VsockConnection, HostEofQueuesShutdownOnce) {
  Connection c = Established();
  (void)c.TakeOp();
  c.OnHostEof(false);
  EXPECT_EQ(c.TakeOp(), kConnOpShutdown);
  EXPECT_EQ(c.shutdown_flags_to_send(), kVsockShutdownSend);
  c.OnHostEof(false);
  EXPECT_EQ(c.TakeOp(), 0);
  c.OnHostEof(true);  // Then the host closed completely.
  EXPECT_EQ(c.TakeOp(), kConnOpShutdown);
  EXPECT_EQ(c.shutdown_flags_to_send(), kVsockShutdownBoth);
  EXPECT_FALSE(c.WantsHostData());
}

TEST(VsockConnection, PendingBufferGivesMemoryBack) {
  Connection c = Established();
  c.pending().resize(10000);
  c.DropPending(6000);
  EXPECT_EQ(c.pending_size(), 4000u);
  c.DropPending(4000);
  EXPECT_EQ(c.pending_size(), 0u);
  EXPECT_EQ(c.pending().capacity(), 0u);
}

}  // namespace
}  // namespace hearth
