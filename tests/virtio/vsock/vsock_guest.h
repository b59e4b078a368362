// The guest's side of virtio-vsock on plain memory, for the device tests and the benchmark:
// lays out the three queues (VirtioDriver), activates the device, sends packets on the TX
// queue (a header descriptor and a payload descriptor per packet, recycled), and collects the
// packets the device put in the RX queue (fixed-size buffers, re-posted after reading) and the
// events. The device is kicked the way the VMM loop would: ProcessQueue on a queue kick,
// OnEvent on its epoll fd.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memory/guest_memory.h"
#include "tests/virtio_support/virtio_driver.h"
#include "virtio/vsock/packet.h"
#include "virtio/vsock/vsock.h"

namespace hearth::testing {

struct VsockPacket {
  VsockHeader header{};
  std::vector<uint8_t> payload;
};

class VsockGuestInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t /*cause*/) override { ++raised; }
  void SetNeedsReset() override { ++needs_reset; }
  uint64_t raised = 0;
  uint64_t needs_reset = 0;
};

class VsockGuest {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kTxSlots = kQueueSize / 2;

  // `memory` needs 32 MiB at guest address 0 (more with large RX buffers: rx_buf_size * 256).
  VsockGuest(GuestMemory& memory, Vsock& device, uint32_t rx_buf_size = 4096,
             uint16_t rx_buffers = kQueueSize, bool event_idx = false);

  // Configures the queues, posts the RX and event buffers and activates the device.
  Status Activate();

  // A header from the guest (src = guest CID / `guest_port`, dst = host / `host_port`).
  VsockHeader Header(uint16_t op, uint32_t guest_port, uint32_t host_port, uint32_t len = 0,
                     uint32_t buf_alloc = 256 * 1024, uint32_t fwd_cnt = 0) const;
  // Puts a packet on the TX queue; kicks the device (ProcessQueue) when `kick`.
  void Send(const VsockHeader& header, std::span<const uint8_t> payload = {}, bool kick = true);
  void Send(const VsockHeader& header, std::string_view payload, bool kick = true) {
    Send(header, std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()), kick);
  }
  void KickTx() { device_.ProcessQueue(kVsockTxQueue); }
  // Raw TX chain for hostile tests: any buffers.
  void SendRaw(const std::vector<BufferSpec>& buffers);
  VirtioDriver& tx_driver() { return *tx_; }
  // Raw RX access for hostile tests (construct with rx_buffers = 0 and post chains here).
  VirtioDriver& rx_driver() { return *rx_; }

  // The device's epoll fd became readable (what the VMM loop calls).
  void PollHost() { device_.OnEvent(device_.epoll_fd(), 0x001 /*EPOLLIN*/); }

  // Packets the device returned since the last call (buffers re-posted; the RX queue is kicked
  // after re-posting, as Linux does when it refills).
  std::vector<VsockPacket> Receive(bool kick = true);
  // Same, but only the payload bytes are copied into `sink` (appending) and only headers kept:
  // the benchmark's cheaper path. Returns the number of packets.
  size_t ReceiveInto(std::vector<VsockHeader>& headers, std::string* sink, bool kick = true);
  // Events the device delivered (event ids).
  std::vector<uint32_t> Events();
  // Posts one more event buffer and kicks the event queue.
  void PostEventBuffer();
  // Event buffers Activate posts (set before Activate).
  uint16_t initial_event_buffers = 8;
  // TX chains the device returned (their slots are free again).
  void ReclaimTx();
  uint16_t tx_used() const { return tx_->used_idx(); }

  uint64_t cid() const { return device_.guest_cid(); }
  const VsockGuestInterrupt& interrupt() const { return *interrupt_; }

 private:
  GuestMemory& memory_;
  Vsock& device_;
  uint32_t rx_buf_size_;
  uint16_t rx_buffers_;
  bool event_idx_;
  std::unique_ptr<VirtioDriver> rx_, tx_, ev_;
  std::vector<Queue> queues_;
  std::shared_ptr<VsockGuestInterrupt> interrupt_;
  std::vector<uint64_t> rx_bufs_;
  std::vector<uint64_t> ev_bufs_;
  std::vector<uint64_t> tx_hdr_, tx_data_;
  std::deque<uint32_t> tx_free_;
  uint16_t rx_seen_ = 0, ev_seen_ = 0, tx_seen_ = 0;
};

}  // namespace hearth::testing
