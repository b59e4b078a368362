// virtio-vsock (device id 19) with Firecracker's host side: stream sockets between the guest
// and host programs on UNIX sockets.
//
//  - host -> guest: a host program connects to `uds_path` and writes `CONNECT <port>\n`; the
//    device sends the guest a REQUEST and, once the guest accepts (RESPONSE), writes
//    `OK <host_port>\n` and relays bytes both ways. A refused or timed-out request closes the
//    host socket.
//  - guest -> host: a guest connect to (CID 2, port P) connects to the UNIX socket
//    `<uds_path>_<P>`; nothing listening there means the guest gets a RST.
//
// Queues: 0 RX (device -> guest packets), 1 TX (guest -> device), 2 event. Every host socket
// is non-blocking and lives in the device's own epoll set, whose fd is the device's one event
// source on the VMM loop (connections come and go; the VMM watches one fd). Per-connection
// buffering is bounded by the credit protocol (connection.h); host bytes are read straight
// into the guest's RX buffers and guest bytes written straight from its TX buffers.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.h"
#include "virtio/virtio_device.h"
#include "virtio/vsock/connection.h"
#include "virtio/vsock/packet.h"

namespace hearth {

constexpr uint16_t kVsockRxQueue = 0;
constexpr uint16_t kVsockTxQueue = 1;
constexpr uint16_t kVsockEventQueue = 2;
constexpr uint16_t kVsockQueueMaxSize = 256;

struct VsockOptions {
  uint64_t guest_cid = 0;
  std::string uds_path;
  // How long the guest has to answer a host-initiated REQUEST. Firecracker allows 2 s; a
  // loaded guest whose kernel is interpreted (kvm_pvm) needs seconds to work through a burst
  // of requests queued behind data, and a guest with a vsock driver always answers (RST when
  // nothing listens), so the limit only matters for guests without a driver. A host client
  // also has this long from its connect() to send its whole CONNECT line.
  uint64_t connect_timeout_us = 30'000'000;
  // Connections (including host sockets that have not sent CONNECT yet) beyond this are
  // refused.
  size_t max_connections = 4096;
};

// What a snapshot keeps: connections do not survive a snapshot (the guest is told with
// TransportReset before the state is taken, as on Firecracker), listeners in the guest do.
struct VsockState {
  uint64_t guest_cid = 0;
  std::string uds_path;
  uint64_t acked_features = 0;
};

struct VsockMetrics {
  uint64_t rx_packets = 0;  // To the guest.
  uint64_t rx_bytes = 0;    // Payload bytes to the guest.
  uint64_t tx_packets = 0;  // From the guest.
  uint64_t tx_bytes = 0;    // Payload bytes from the guest.
  uint64_t tx_dropped = 0;  // Malformed or misaddressed TX packets.
  uint64_t resets_sent = 0;
  uint64_t connections_opened = 0;
  uint64_t connections_refused = 0;  // Guest connects with nothing listening, host CONNECTs refused.
  uint64_t host_protocol_errors = 0;  // Bad CONNECT lines.
  uint64_t malformed_chains = 0;
  uint64_t active_connections = 0;
};

class Vsock : public VirtioDevice {
 public:
  // Binds the listener at options.uds_path (which must not exist yet).
  static Result<std::unique_ptr<Vsock>> Create(const VsockOptions& options);
  // Re-creates a saved device (binding uds_path again) and checks the acked features.
  static Result<std::unique_ptr<Vsock>> Restore(const VsockState& state);
  ~Vsock() override;

  uint32_t device_type() const override { return kVirtioIdVsock; }
  uint64_t device_features() const override { return kFeatures; }
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kVsockQueueMaxSize, kVsockQueueMaxSize, kVsockQueueMaxSize};
  }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) const override;
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override;
  Status Activate(VirtioActivation activation) override;
  void Reset() override;
  void ProcessQueue(uint16_t index) override;
  bool activated() const override { return activated_; }
  // The device's epoll fd (EPOLLIN): the listener, every host connection and its timer.
  std::vector<EventSource> event_sources() const override;
  void OnEvent(int fd, uint32_t events) override;

  // Drops every connection (their host sockets close) and tells the guest with
  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue (delivered as soon as the guest has
  // an event buffer). Guest listeners survive. New host CONNECTs wait until the guest has taken
  // the event (it kicks the event queue after refilling it), at most connect_timeout_us, then
  // their host socket closes without "OK". Call on the VMM thread before a snapshot is taken.
  void TransportReset();

  VsockState Save() const;
  // Snapshot bytes (VirtioDevice): version, guest CID, acked features, whether a
  // TRANSPORT_RESET event still waits for a guest event buffer, and the next host port. RestoreState checks the CID
  // against the rebuilt device and the features against kFeatures; a pending event is
  // delivered when the transport re-activates the device.
  std::vector<uint8_t> SaveState() const override;
  Status RestoreState(std::span<const uint8_t> state) override;
  bool event_pending() const { return event_pending_; }
  // On the VMM thread (or under the transport's lock), like every other call here.
  VsockMetrics metrics() const;
  uint64_t guest_cid() const { return options_.guest_cid; }
  const std::string& uds_path() const { return options_.uds_path; }
  int epoll_fd() const { return epoll_.get(); }
  bool needs_reset() const { return needs_reset_; }
  size_t connection_count() const { return connections_.size(); }

  static constexpr uint64_t kFeatures =
      kVirtioFVersion1 | kVirtioFRingEventIdx | kVirtioFRingIndirectDesc;

 private:
  using Key = uint64_t;  // local (host) port << 32 | peer (guest) port
  static Key MakeKey(uint32_t local_port, uint32_t peer_port) {
    return (uint64_t{local_port} << 32) | peer_port;
  }

  Vsock(VsockOptions options, Fd listener, Fd epoll, Fd timer, EventFd wake);

  // Inner epoll dispatch.
  void PollHost();
  void OnListener();
  void OnHostLine(int fd);
  // Offers the CONNECTs parked behind a TRANSPORT_RESET once the guest has taken it.
  void ResumeParkedLines();
  // Turns the host line `fd`, whose CONNECT was read, into a connection request to the guest.
  void OfferHostConnection(int fd);
  void OnConnectionEvent(Connection& conn, uint32_t events);
  void OnTimer();
  void ArmTimer();

  // TX.
  void ProcessTx();
  void HandleTxPacket(const DescriptorChain& chain);
  void HandleRequest(const VsockHeader& header);
  // Writes guest payload at `offset` bytes into the chain to the host socket (or pending).
  ConnAction ForwardPayload(Connection& conn, const DescriptorChain& chain, uint32_t len);
  // Writes pending bytes to the host; false when the host socket failed.
  bool FlushPending(Connection& conn);
  // Applies the guest's shutdown flags to the host socket when nothing is pending.
  void ApplyGuestShutdown(Connection& conn);

  // RX.
  void ProcessRx();
  bool HasRxWork() const;
  // Fills one RX chain with the next packet; false when nothing could be written (the chain
  // stays held for later).
  bool FillRxChain(const DescriptorChain& chain, uint32_t* written);
  bool WriteHeader(const DescriptorChain& chain, const VsockHeader& header);
  // Reads host bytes for `conn` into the chain; the packet's length, 0 when nothing was read.
  uint32_t ReadHostData(Connection& conn, const DescriptorChain& chain);

  // Connection bookkeeping.
  Connection* Find(Key key);
  void QueueOps(Connection& conn);
  void QueueData(Connection& conn);
  void QueueRst(uint32_t local_port, uint32_t peer_port);
  // Removes the connection (closing its host socket), sending RST first when `reset`.
  void Remove(Key key, bool reset);
  void RemoveAll();
  uint32_t AllocateLocalPort();
  size_t total_connections() const { return connections_.size() + host_lines_.size(); }

  // Event queue.
  void DeliverEvents();

  void ReturnChain(Queue& queue, uint16_t head, uint32_t len);
  void HandleChainError(Queue& queue, const ChainError& error);
  void SignalUsed(Queue& queue);
  void BreakDevice();

  VsockOptions options_;
  Fd listener_;
  Fd epoll_;
  Fd timer_;
  EventFd wake_;  // Work Activate hands to the event loop (see Activate).
  bool timer_armed_ = false;

  bool activated_ = false;
  bool needs_reset_ = false;
  GuestMemory* memory_ = nullptr;
  std::vector<Queue>* queues_ = nullptr;
  std::shared_ptr<VirtioInterrupt> interrupt_;
  uint64_t acked_features_ = 0;

  std::unordered_map<Key, std::unique_ptr<Connection>> connections_;
  std::unordered_map<int, Key> fd_to_key_;
  // Host sockets accepted on uds_path that have not sent their whole CONNECT line yet, or whose
  // CONNECT (read) waits for the guest to take a TRANSPORT_RESET (after a snapshot or restore):
  // those are parked with a new deadline (connect_timeout_us from when the line was read), after
  // which they are closed as an unanswered request would be. A client that never completes its
  // line is closed connect_timeout_us after it was accepted: it holds one of max_connections.
  struct HostLine {
    Fd fd;
    uint64_t deadline_us = 0;  // For the line until it is read, then for the guest.
    bool parked = false;       // The CONNECT line was read.
    uint32_t port = 0;         // The CONNECT line's port, once read.
  };
  std::unordered_map<int, HostLine> host_lines_;
  uint32_t next_local_port_ = 1u << 30;
  bool listener_pending_ = false;  // An accept edge arrived before activation.
  size_t parked_lines_ = 0;        // host_lines_ that are parked.

  // RX work: standalone RSTs (for packets with no connection), connections with control
  // packets to send, connections with host bytes to read. Each connection is queued at most
  // once per queue, so all three stay bounded.
  std::deque<VsockHeader> rst_queue_;
  std::deque<Key> op_queue_;
  std::deque<Key> data_queue_;
  std::optional<DescriptorChain> rx_held_;  // Popped, nothing to put in it yet.
  bool event_pending_ = false;
  // A TRANSPORT_RESET was delivered and the guest has not kicked its event queue since:
  // host-initiated connections wait in the backlog until it has.
  bool reset_unacked_ = false;

  std::vector<iovec> iov_;
  std::vector<uint8_t> tx_scratch_;

  VsockMetrics m_;
};

}  // namespace hearth
