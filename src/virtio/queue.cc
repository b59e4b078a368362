#include "virtio/queue.h"

#include <algorithm>
#include <atomic>
#include <sstream>

#include "base/hex.h"

namespace hearth {
namespace {

// Split ring layout offsets.
constexpr uint64_t kRingHeader = 4;  // flags u16, idx u16.

uint64_t AvailRingBytes(uint16_t size) { return kRingHeader + 2ull * size + 2; }
uint64_t UsedRingBytes(uint16_t size) { return kRingHeader + 8ull * size + 2; }

// From the virtio spec: would moving the index from `old_idx` to `new_idx` cross `event`?
bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}


}  // namespace

void Queue::Reset() {
  uint16_t max = state_.max_size;
  state_ = QueueState{};
  state_.max_size = max;
  state_.size = max;
}

Status Queue::Validate(const GuestMemory& memory) const {
  const uint16_t size = state_.size;
  if (size == 0 || size > state_.max_size || (size & (size - 1)) != 0) {
    return Error("queue size " + std::to_string(size) + " is not a power of two up to " +
                 std::to_string(state_.max_size));
  }
  if (state_.desc_table % 16 != 0 || state_.avail_ring % 2 != 0 || state_.used_ring % 4 != 0) {
    return Error("queue rings are misaligned");
  }
  if (!memory.IsValidRange(state_.desc_table, 16ull * size)) {
    return Error("descriptor table at " + Hex(state_.desc_table) + " is outside guest memory");
  }
  if (!memory.IsValidRange(state_.avail_ring, AvailRingBytes(size))) {
    return Error("available ring at " + Hex(state_.avail_ring) + " is outside guest memory");
  }
  if (!memory.IsValidRange(state_.used_ring, UsedRingBytes(size))) {
    return Error("used ring at " + Hex(state_.used_ring) + " is outside guest memory");
  }
  return Ok();
}

Result<uint16_t> Queue::ReadAvailIdx(const GuestMemory& memory) const {
  auto idx = memory.ReadObj<uint16_t>(state_.avail_ring + 2);
  // Descriptor and ring reads that follow must not be satisfied before this one.
  std::atomic_thread_fence(std::memory_order_acquire);
  return idx;
}

Result<uint16_t> Queue::AvailableCount(const GuestMemory& memory) const {
  ASSIGN_OR_RETURN(uint16_t avail_idx, ReadAvailIdx(memory));
  uint16_t pending = static_cast<uint16_t>(avail_idx - state_.next_avail);
  if (pending > state_.size) {
    return Error("available index moved " + std::to_string(pending) +
                 " entries ahead of the device, more than the queue holds");
  }
  return pending;
}

Queue::PopResult Queue::Pop(const GuestMemory& memory) {
  PopResult result;
  // A queue the driver has not made ready points at nothing the device may use (its ring
  // registers may still be 0, i.e. the guest's page 0): it has no chains.
  if (!state_.ready) return result;
  auto pending = AvailableCount(memory);
  if (!pending.ok()) {
    result.error = ChainError{0, true, pending.error()};
    return result;
  }
  if (*pending == 0) return result;
  const uint16_t slot = state_.next_avail % state_.size;
  auto head = memory.ReadObj<uint16_t>(state_.avail_ring + kRingHeader + 2ull * slot);
  state_.next_avail++;
  if (!head.ok()) {
    result.error = ChainError{0, true, head.error()};
    return result;
  }
  if (*head >= state_.size) {
    result.error = ChainError{*head, true,
                              Error("chain head " + std::to_string(*head) + " is out of range")};
    return result;
  }
  DescriptorChain chain;
  chain.head = *head;
  if (auto s = WalkChain(memory, *head, chain); !s.ok()) {
    result.error = ChainError{*head, false, s.error()};
    return result;
  }
  result.chain = std::move(chain);
  return result;
}

Status Queue::WalkChain(const GuestMemory& memory, uint16_t head, DescriptorChain& chain) const {
  uint64_t table = state_.desc_table;
  uint32_t table_size = state_.size;
  uint16_t index = head;
  // A chain visits each descriptor of its table at most once; more means a loop.
  uint32_t visited = 0;
  bool indirect = false;
  for (;;) {
    if (++visited > table_size) {
      return Error("descriptor chain from " + std::to_string(head) + " loops or is too long");
    }
    ASSIGN_OR_RETURN(VirtqDesc desc, memory.ReadObj<VirtqDesc>(table + 16ull * index));
    if (desc.flags & kVirtqDescIndirect) {
      if (!state_.indirect) return Error("indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
      if (indirect) return Error("nested indirect descriptor table");
      if (desc.flags & kVirtqDescNext) return Error("indirect descriptor with NEXT set");
      if (desc.len == 0 || desc.len % 16 != 0 || desc.len / 16 > 0x10000) {
        return Error("indirect table length " + std::to_string(desc.len) + " is invalid");
      }
      if (!memory.IsValidRange(desc.addr, desc.len)) {
        return Error("indirect table at " + Hex(desc.addr) + " is outside guest memory");
      }
      indirect = true;
      table = desc.addr;
      table_size = desc.len / 16;
      index = 0;
      visited = 0;
      continue;
    }
    if (!memory.IsValidRange(desc.addr, desc.len)) {
      return Error("buffer [" + Hex(desc.addr) + ", +" + Hex(desc.len) + ") is outside guest memory");
    }
    if (desc.flags & kVirtqDescWrite) {
      chain.writable.push_back({desc.addr, desc.len});
      chain.writable_bytes += desc.len;
    } else {
      if (!chain.writable.empty()) return Error("device-readable buffer after a writable one");
      chain.readable.push_back({desc.addr, desc.len});
      chain.readable_bytes += desc.len;
    }
    if (chain.readable_bytes + chain.writable_bytes > kMaxChainBytes) {
      return Error("descriptor chain carries more than 4 GiB");
    }
    if (!(desc.flags & kVirtqDescNext)) return Ok();
    if (desc.next >= table_size) {
      return Error("descriptor next index " + std::to_string(desc.next) + " is out of range");
    }
    index = desc.next;
  }
}

Status Queue::AddUsed(GuestMemory& memory, uint16_t head, uint32_t len) {
  if (!state_.ready) return Error("used ring of a queue that is not ready");
  const uint16_t slot = state_.next_used % state_.size;
  VirtqUsedElem elem{head, len};
  RETURN_IF_ERROR(memory.WriteObj(state_.used_ring + kRingHeader + 8ull * slot, elem));
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  state_.next_used++;
  return memory.WriteObj(state_.used_ring + 2, state_.next_used);
}

bool Queue::NeedsInterrupt(const GuestMemory& memory) {
  if (!state_.ready) return false;
  // The used index store must be ordered before reading what the driver asked for.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!state_.event_idx) {
    auto flags = memory.ReadObj<uint16_t>(state_.avail_ring);
    return !flags.ok() || (*flags & kVirtqAvailNoInterrupt) == 0;
  }
  auto used_event = memory.ReadObj<uint16_t>(state_.avail_ring + kRingHeader + 2ull * state_.size);
  uint16_t old = state_.signalled_used;
  bool valid = state_.signalled_used_valid;
  state_.signalled_used = state_.next_used;
  state_.signalled_used_valid = true;
  if (!used_event.ok() || !valid) return true;
  return NeedEvent(*used_event, state_.next_used, old);
}

bool Queue::EnableNotification(GuestMemory& memory) {
  if (!state_.ready) return false;
  if (state_.event_idx) {
    (void)memory.WriteObj(state_.used_ring + kRingHeader + 8ull * state_.size, state_.next_avail);
  } else {
    auto flags = memory.ReadObj<uint16_t>(state_.used_ring);
    if (flags.ok()) {
      (void)memory.WriteObj<uint16_t>(state_.used_ring,
                                      static_cast<uint16_t>(*flags & ~kVirtqUsedNoNotify));
    }
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto pending = AvailableCount(memory);
  return !pending.ok() || *pending > 0;
}

void Queue::NotifyOnNextAvail(GuestMemory& memory) {
  if (!state_.event_idx) {
    (void)EnableNotification(memory);
    return;
  }
  // avail_event = the driver's current avail idx: its next addition crosses it and kicks,
  // even while buffers the device has not popped are still available.
  auto idx = ReadAvailIdx(memory);
  if (!idx.ok()) return;
  (void)memory.WriteObj(state_.used_ring + kRingHeader + 8ull * state_.size, *idx);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void Queue::DisableNotification(GuestMemory& memory) {
  if (!state_.ready || state_.event_idx) return;  // avail_event is simply not advanced.
  auto flags = memory.ReadObj<uint16_t>(state_.used_ring);
  if (flags.ok()) {
    (void)memory.WriteObj<uint16_t>(state_.used_ring, static_cast<uint16_t>(*flags | kVirtqUsedNoNotify));
  }
}

Status Queue::Restore(const QueueState& state, const GuestMemory& memory) {
  if (state.max_size != state_.max_size) {
    return Error("queue state: max size " + std::to_string(state.max_size) + " does not match the device's " +
                 std::to_string(state_.max_size));
  }
  QueueState saved = state_;
  state_ = state;
  if (state_.ready) {
    if (auto s = Validate(memory); !s.ok()) {
      state_ = saved;
      return s.error().Wrap("queue state");
    }
  }
  return Ok();
}

Status WriteChainBytes(GuestMemory& memory, const DescriptorChain& chain, uint64_t offset,
                       std::span<const uint8_t> data) {
  for (const GuestBuffer& buf : chain.writable) {
    if (data.empty()) break;
    if (offset >= buf.len) {
      offset -= buf.len;
      continue;
    }
    size_t n = std::min<uint64_t>(data.size(), buf.len - offset);
    RETURN_IF_ERROR(memory.Write(buf.addr + offset, data.first(n)));
    data = data.subspan(n);
    offset = 0;
  }
  if (!data.empty()) return Error("chain is too short");
  return Ok();
}

Status ReadChainBytes(const GuestMemory& memory, const DescriptorChain& chain, uint64_t offset,
                      std::span<uint8_t> out) {
  for (const GuestBuffer& buf : chain.readable) {
    if (out.empty()) break;
    if (offset >= buf.len) {
      offset -= buf.len;
      continue;
    }
    size_t n = std::min<uint64_t>(out.size(), buf.len - offset);
    RETURN_IF_ERROR(memory.Read(buf.addr + offset, out.first(n)));
    out = out.subspan(n);
    offset = 0;
  }
  if (!out.empty()) return Error("chain is too short");
  return Ok();
}

}  // namespace hearth
