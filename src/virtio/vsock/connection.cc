#include "virtio/vsock/connection.h"

#include <bit>

namespace hearth {

Connection Connection::HostInitiated(uint32_t local_port, uint32_t peer_port) {
  Connection c(local_port, peer_port, ConnState::kLocalInit);
  c.QueueOp(kConnOpRequest);
  return c;
}

Connection Connection::GuestInitiated(uint32_t local_port, uint32_t peer_port,
                                      const VsockHeader& request) {
  Connection c(local_port, peer_port, ConnState::kPeerInit);
  c.UpdatePeerCredit(request);
  return c;
}

void Connection::OnHostConnected() {
  if (state_ != ConnState::kPeerInit) return;
  state_ = ConnState::kEstablished;
  QueueOp(kConnOpResponse);
}

void Connection::UpdatePeerCredit(const VsockHeader& header) {
  peer_buf_alloc_ = header.buf_alloc;
  peer_fwd_cnt_ = header.fwd_cnt;
}

ConnAction Connection::OnGuestPacket(const VsockHeader& header) {
  if (header.op == kVsockOpRst) return ConnAction::kDrop;
  UpdatePeerCredit(header);
  switch (header.op) {
    case kVsockOpRequest:
      // A second REQUEST for a connection that exists.
      return ConnAction::kReset;
    case kVsockOpResponse:
      if (state_ != ConnState::kLocalInit) return ConnAction::kReset;
      state_ = ConnState::kEstablished;
      return ConnAction::kNone;
    case kVsockOpRw:
      if (state_ != ConnState::kEstablished || (guest_shutdown_ & kVsockShutdownSend)) {
        return ConnAction::kReset;
      }
      if (!GuestMaySend(header.len)) return ConnAction::kReset;
      return ConnAction::kNone;
    case kVsockOpShutdown:
      if (state_ != ConnState::kEstablished) return ConnAction::kReset;
      guest_shutdown_ |= header.flags & kVsockShutdownBoth;
      return ConnAction::kNone;
    case kVsockOpCreditRequest:
      if (state_ == ConnState::kEstablished) QueueOp(kConnOpCreditUpdate);
      return ConnAction::kNone;
    case kVsockOpCreditUpdate:
      return ConnAction::kNone;
    default:
      return ConnAction::kReset;
  }
}

void Connection::RecordForwarded(uint32_t len) {
  fwd_cnt_ += len;
  if (fwd_cnt_ - fwd_cnt_told_ >= kCreditUpdateThreshold) QueueOp(kConnOpCreditUpdate);
}

uint32_t Connection::PeerFreeSpace() const {
  const uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;
  // A guest that shrank its buffer (or reports nonsense) gets nothing until it catches up.
  return in_flight >= peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
}

void Connection::OnHostEof(bool hangup) {
  if (host_eof_ && !hangup) return;
  host_eof_ = true;
  uint32_t flags = kVsockShutdownSend | (hangup ? kVsockShutdownRcv : 0);
  if ((flags & ~shutdown_to_send_) == 0) return;
  shutdown_to_send_ |= flags;
  QueueOp(kConnOpShutdown);
}

ConnOp Connection::TakeOp() {
  if (pending_ops_ == 0) return static_cast<ConnOp>(0);
  const uint32_t op = pending_ops_ & (~pending_ops_ + 1);  // Lowest set bit.
  pending_ops_ &= ~op;
  return static_cast<ConnOp>(op);
}

void Connection::FillHeader(VsockHeader& header, uint64_t guest_cid, uint16_t op) {
  header = VsockHeader{};
  header.src_cid = kVsockHostCid;
  header.dst_cid = guest_cid;
  header.src_port = local_port_;
  header.dst_port = peer_port_;
  header.type = kVsockTypeStream;
  header.op = op;
  header.buf_alloc = kConnBufAlloc;
  header.fwd_cnt = fwd_cnt_;
  fwd_cnt_told_ = fwd_cnt_;
  // The guest now knows everything: a queued update would say nothing new.
  if (op != kVsockOpCreditUpdate) pending_ops_ &= ~kConnOpCreditUpdate;
}

void Connection::DropPending(size_t n) {
  pending_start += n;
  if (pending_start >= pending_.size()) {
    // Drained: give the memory back so idle connections stay small.
    std::vector<uint8_t>().swap(pending_);
    pending_start = 0;
  } else if (pending_start > pending_.size() / 2 && pending_start > 4096) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_start));
    pending_start = 0;
  }
}

}  // namespace hearth
