// A split virtqueue (virtio 1.x), device side. The rings live in guest memory and are written by
// a hostile driver: every index is range-checked, every descriptor's address *and length* is
// checked against guest memory when the chain is popped (before any byte moves), chains are
// bounded in length and bytes so a loop or an oversized chain ends with an error, and indirect
// tables are checked like direct ones. The queue never holds a host pointer.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace hearth {

// Descriptor flags.
constexpr uint16_t kVirtqDescNext = 1;
constexpr uint16_t kVirtqDescWrite = 2;
constexpr uint16_t kVirtqDescIndirect = 4;
// Ring flags.
constexpr uint16_t kVirtqAvailNoInterrupt = 1;
constexpr uint16_t kVirtqUsedNoNotify = 1;

struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

struct VirtqUsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(VirtqUsedElem) == 8);

// One guest buffer of a chain, already checked to lie inside guest memory.
struct GuestBuffer {
  uint64_t addr;
  uint32_t len;
};

// A popped descriptor chain: the buffers the device reads (driver to device) and then the ones
// it writes (device to driver), in order.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<GuestBuffer> readable;
  std::vector<GuestBuffer> writable;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

// A malformed chain: its head was consumed and must be returned to the driver (AddUsed with
// length 0), and the device may have to report DEVICE_NEEDS_RESET.
struct ChainError {
  uint16_t head;
  bool needs_reset;  // The ring itself is broken (not just one chain).
  Error error;
};

// Queue state as the driver configured it and as the device has advanced it: what a snapshot
// saves and restores.
struct QueueState {
  uint16_t max_size = 256;
  uint16_t size = 256;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;
  uint64_t used_ring = 0;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  uint16_t signalled_used = 0;  // used idx at the last interrupt (event-idx suppression).
  bool signalled_used_valid = false;
  bool event_idx = false;
  bool indirect = false;
};

class Queue {
 public:
  // A chain may not carry more than this many bytes in total (the largest virtio-blk request
  // Linux makes is far smaller); it bounds work per request.
  static constexpr uint64_t kMaxChainBytes = uint64_t{1} << 32;

  explicit Queue(uint16_t max_size) { state_.max_size = max_size; state_.size = max_size; }

  // Driver-side configuration (through the transport), before the queue is ready.
  void set_size(uint16_t size) { state_.size = size; }
  void set_desc_table(uint64_t addr) { state_.desc_table = addr; }
  void set_avail_ring(uint64_t addr) { state_.avail_ring = addr; }
  void set_used_ring(uint64_t addr) { state_.used_ring = addr; }
  void set_ready(bool ready) { state_.ready = ready; }
  // Negotiated ring features, set when the device is activated.
  void set_features(bool event_idx, bool indirect) {
    state_.event_idx = event_idx;
    state_.indirect = indirect;
  }
  void Reset();

  uint16_t max_size() const { return state_.max_size; }
  uint16_t size() const { return state_.size; }
  bool ready() const { return state_.ready; }
  uint64_t desc_table() const { return state_.desc_table; }
  uint64_t avail_ring() const { return state_.avail_ring; }
  uint64_t used_ring() const { return state_.used_ring; }

  // Size a power of two within max_size, rings aligned and inside guest memory.
  Status Validate(const GuestMemory& memory) const;

  // The next available chain, nothing when the ring is empty, or a ChainError. A queue that is
  // not ready is never read or written: Pop finds nothing, AddUsed fails, the notification
  // calls do nothing (a device may be activated with queues the driver left unused).
  struct PopResult {
    std::optional<DescriptorChain> chain;
    std::optional<ChainError> error;
  };
  PopResult Pop(const GuestMemory& memory);
  // Puts back the chain the last successful Pop returned (the device cannot serve it yet, e.g.
  // it is throttled): the next Pop walks it again from the ring.
  void UndoPop() { --state_.next_avail; }
  // Returns a chain to the driver with `len` bytes written.
  Status AddUsed(GuestMemory& memory, uint16_t head, uint32_t len);
  // Whether the driver wants an interrupt for what was added since the last one (event idx or
  // the NO_INTERRUPT flag). Call once after a batch of AddUsed.
  bool NeedsInterrupt(const GuestMemory& memory);
  // Asks the driver to kick for new buffers (writes avail_event / clears NO_NOTIFY). Returns
  // true when buffers arrived meanwhile, so the caller processes again instead of sleeping.
  bool EnableNotification(GuestMemory& memory);
  void DisableNotification(GuestMemory& memory);
  // Asks for a kick on the driver's next new buffer, even with unpopped buffers available
  // (EnableNotification asks only once the device has caught up).
  void NotifyOnNextAvail(GuestMemory& memory);
  // Number of chains the driver has made available and the device not yet popped.
  Result<uint16_t> AvailableCount(const GuestMemory& memory) const;

  const QueueState& state() const { return state_; }
  // Restores a saved queue, re-checking it against guest memory.
  Status Restore(const QueueState& state, const GuestMemory& memory);

 private:
  Result<uint16_t> ReadAvailIdx(const GuestMemory& memory) const;
  Status WalkChain(const GuestMemory& memory, uint16_t head, DescriptorChain& chain) const;

  QueueState state_;
};

// Byte-addressed access to a chain's buffers, for headers that may span descriptors: copies
// `data` into the writable buffers, or fills `out` from the readable ones, starting at byte
// `offset`. Fails (after writing what fitted) when the chain is too short.
Status WriteChainBytes(GuestMemory& memory, const DescriptorChain& chain, uint64_t offset,
                       std::span<const uint8_t> data);
Status ReadChainBytes(const GuestMemory& memory, const DescriptorChain& chain, uint64_t offset,
                      std::span<uint8_t> out);

}  // namespace hearth
