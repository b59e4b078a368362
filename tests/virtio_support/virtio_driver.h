// The driver side of a split virtqueue, for tests and benchmarks: lays out a descriptor table
// and rings in guest memory (plain anonymous memory, no KVM), configures a device-side Queue
// as a driver would through the transport, adds descriptor chains (direct or indirect), and
// reads back the used ring. Raw writers let hostile tests put anything anywhere.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/queue.h"

namespace hearth::testing {

struct BufferSpec {
  uint64_t addr;
  uint32_t len;
  bool device_writes = false;
};

class VirtioDriver {
 public:
  // Rings for a queue of `size` entries at `ring_base` (needs 16*size + 6+2*size + 6+8*size
  // bytes, laid out aligned); data buffers come from Alloc(), starting at `data_base`.
  VirtioDriver(GuestMemory& memory, uint64_t ring_base, uint16_t size, uint64_t data_base);

  uint16_t size() const { return size_; }
  uint64_t desc_table() const { return desc_; }
  uint64_t avail_ring() const { return avail_; }
  uint64_t used_ring() const { return used_; }

  // Points `queue` at these rings with this size and marks it ready (as QueueNum, QueueDesc*,
  // QueueDriver*, QueueDevice*, QueueReady would).
  void Configure(Queue& queue, bool event_idx = false, bool indirect = false) const;

  // Bump-allocates guest memory for data (aligned to 8), failing the test if out of memory.
  uint64_t Alloc(uint64_t bytes);
  // Allocates a buffer and fills it with `bytes`.
  uint64_t AllocWith(std::span<const uint8_t> bytes);

  // Writes a chain into free descriptors (linked with NEXT) and publishes it; returns the head.
  uint16_t AddChain(const std::vector<BufferSpec>& buffers);
  // Writes the buffers as an indirect table at a freshly allocated address, referenced by one
  // descriptor, and publishes it.
  uint16_t AddIndirectChain(const std::vector<BufferSpec>& buffers);

  // Raw access for hostile tests.
  void WriteDescriptor(uint16_t index, const VirtqDesc& desc);
  void WriteDescriptorAt(uint64_t table, uint16_t index, const VirtqDesc& desc);
  void PublishHead(uint16_t head);  // Ring entry at avail idx, then idx + 1.
  void SetAvailIdx(uint16_t idx);
  uint16_t avail_idx() const;
  void SetAvailFlags(uint16_t flags);
  void SetUsedEvent(uint16_t value);  // avail->used_event (event idx)

  // Device-written state.
  uint16_t used_idx() const;
  uint16_t used_flags() const;
  uint16_t avail_event() const;  // used->avail_event (event idx)
  VirtqUsedElem used_elem(uint16_t ring_slot) const;
  // Used elements from `from` (a used index) up to the current used idx.
  std::vector<VirtqUsedElem> UsedSince(uint16_t from) const;

  std::vector<uint8_t> ReadBytes(uint64_t addr, uint64_t len) const;
  void WriteBytes(uint64_t addr, std::span<const uint8_t> bytes);

 private:
  GuestMemory& memory_;
  uint16_t size_;
  uint64_t desc_, avail_, used_;
  uint64_t next_data_;
  uint16_t next_desc_ = 0;
};

}  // namespace hearth::testing
