// One vsock stream connection between a guest port and a host UNIX socket: its state machine
// and its credit-based flow control (virtio 1.2, 5.10.6.3), with no I/O, so both can be
// tested on their own. The device (vsock.h) owns the host socket and moves the bytes.
//
// Credit, both ways:
//  - guest -> host: the device advertises kConnBufAlloc bytes of buffer and counts fwd_cnt, the
//    bytes it has handed to the host socket. The guest may have at most buf_alloc - (rx_cnt -
//    fwd_cnt) bytes in flight; what the host socket does not take at once waits in the pending
//    buffer, which therefore never exceeds kConnBufAlloc. A guest that sends beyond its credit
//    is reset.
//  - host -> guest: the device sends at most peer_buf_alloc - (tx_cnt - peer_fwd_cnt) bytes,
//    reading the host socket only that far, so a slow guest reader slows the host writer (its
//    socket buffer fills) instead of the device buffering.
// Counters are u32 and wrap, as on the wire.
#pragma once

#include <cstdint>
#include <vector>

#include "base/fd.h"
#include "virtio/vsock/packet.h"

namespace hearth {

// The receive buffer the device advertises per connection (Firecracker uses the same).
constexpr uint32_t kConnBufAlloc = 256 * 1024;
// The device tells the guest about freed buffer space once this much was forwarded since it
// last did (every packet to the guest carries fwd_cnt too).
constexpr uint32_t kCreditUpdateThreshold = kConnBufAlloc / 4;

enum class ConnState {
  kLocalInit,    // The host connected and sent CONNECT; REQUEST sent, waiting for RESPONSE.
  kPeerInit,     // The guest sent REQUEST; connecting to the host listener (UNIX sockets
                 // connect at once, so the device leaves this state in the same call).
  kEstablished,  // Until RST either way; shutdowns are flags (guest_shutdown, host_eof).
};

// Packets the connection wants sent to the guest, at most one of each kind outstanding.
enum ConnOp : uint32_t {
  kConnOpRequest = 1u << 0,
  kConnOpResponse = 1u << 1,
  kConnOpCreditUpdate = 1u << 2,
  kConnOpShutdown = 1u << 3,
  kConnOpCreditRequest = 1u << 4,
};

// What the device must do after a guest packet.
enum class ConnAction {
  kNone,
  kReset,  // Send RST to the guest and drop the connection (protocol violation, refusal).
  kDrop,   // Drop the connection without answering (the guest reset it).
};

class Connection {
 public:
  static Connection HostInitiated(uint32_t local_port, uint32_t peer_port);
  static Connection GuestInitiated(uint32_t local_port, uint32_t peer_port,
                                   const VsockHeader& request);

  uint32_t local_port() const { return local_port_; }
  uint32_t peer_port() const { return peer_port_; }
  ConnState state() const { return state_; }

  // The host listener accepted a guest-initiated connection.
  void OnHostConnected();

  // A packet from the guest for this connection (already checked by CheckTxHeader). For RW,
  // `len` payload bytes follow; on kNone the caller forwards them and calls RecordReceived.
  ConnAction OnGuestPacket(const VsockHeader& header);

  // ---- guest -> host -------------------------------------------------------------------------
  // Whether the guest may send `len` more bytes (it respects our credit).
  bool GuestMaySend(uint32_t len) const { return InFlightFromGuest() + uint64_t{len} <= kConnBufAlloc; }
  uint32_t InFlightFromGuest() const { return rx_cnt_ - fwd_cnt_; }
  void RecordReceived(uint32_t len) { rx_cnt_ += len; }
  // `len` bytes reached the host socket; may queue a CREDIT_UPDATE.
  void RecordForwarded(uint32_t len);
  uint32_t fwd_cnt() const { return fwd_cnt_; }

  // ---- host -> guest -------------------------------------------------------------------------
  // How many bytes the guest can take now.
  uint32_t PeerFreeSpace() const;
  void RecordSentToGuest(uint32_t len) { tx_cnt_ += len; }
  uint32_t tx_cnt() const { return tx_cnt_; }
  uint32_t peer_buf_alloc() const { return peer_buf_alloc_; }
  uint32_t peer_fwd_cnt() const { return peer_fwd_cnt_; }

  // Whether the device should read the host socket for this connection now.
  bool WantsHostData() const {
    return state_ == ConnState::kEstablished && !(guest_shutdown_ & kVsockShutdownRcv) &&
           !host_eof_ && PeerFreeSpace() > 0;
  }

  // ---- shutdown ------------------------------------------------------------------------------
  uint32_t guest_shutdown() const { return guest_shutdown_; }
  // The host stopped sending (EOF); `hangup` when it closed completely. Queues SHUTDOWN.
  void OnHostEof(bool hangup);
  bool host_eof() const { return host_eof_; }
  uint32_t shutdown_flags_to_send() const { return shutdown_to_send_; }

  // ---- packets to the guest ------------------------------------------------------------------
  uint32_t pending_ops() const { return pending_ops_; }
  void QueueOp(ConnOp op) { pending_ops_ |= op; }
  // Takes the next control op to send (lowest bit first), 0 when none.
  ConnOp TakeOp();
  // Fills the connection fields of a packet header to the guest (ports, credit), and notes
  // the fwd_cnt the guest now knows.
  void FillHeader(VsockHeader& header, uint64_t guest_cid, uint16_t op);

  // ---- the pending buffer (guest bytes the host socket did not take yet) ---------------------
  std::vector<uint8_t>& pending() { return pending_; }
  size_t pending_start = 0;  // Bytes of pending() already written.
  size_t pending_size() const { return pending_.size() - pending_start; }
  void DropPending(size_t n);

  // ---- device bookkeeping --------------------------------------------------------------------
  Fd fd;                     // The host UNIX socket.
  bool host_readable = false;  // An EPOLLIN edge was seen and the socket not drained since.
  bool host_rdhup = false;     // The host shut its write side: a read will end in EOF.
  bool host_write_shut = false;  // shutdown(SHUT_WR) done after the guest's SHUTDOWN SEND.
  bool in_data_queue = false;
  bool in_op_queue = false;
  uint64_t deadline_us = 0;  // kLocalInit: when the guest must have answered.
  // A write-side failure (EPIPE) seen before the guest learned about it.
  bool host_broken = false;

 private:
  Connection(uint32_t local_port, uint32_t peer_port, ConnState state)
      : local_port_(local_port), peer_port_(peer_port), state_(state) {}
  void UpdatePeerCredit(const VsockHeader& header);

  uint32_t local_port_;
  uint32_t peer_port_;
  ConnState state_;
  uint32_t pending_ops_ = 0;
  uint32_t guest_shutdown_ = 0;
  uint32_t shutdown_to_send_ = 0;
  bool host_eof_ = false;

  uint32_t rx_cnt_ = 0;             // Payload bytes received from the guest.
  uint32_t fwd_cnt_ = 0;            // ... of which handed to the host socket.
  uint32_t fwd_cnt_told_ = 0;       // fwd_cnt in the last header sent to the guest.
  uint32_t tx_cnt_ = 0;             // Payload bytes sent to the guest.
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;

  std::vector<uint8_t> pending_;
};

}  // namespace hearth
