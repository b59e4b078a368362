// What the fuzz targets share: a small guest memory on anonymous pages and a hostile driver that
// decodes descriptor-table, ring and buffer writes from the fuzz input. Addresses are mostly
// drawn near guest memory (so that the fuzzer reaches the code behind the range checks) and
// sometimes raw 64-bit values (so that it also probes the checks themselves).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "base/log.h"
#include "memory/guest_memory.h"
#include "virtio/queue.h"

namespace hearth::fuzz {

// Two regions with a hole between them, so that buffers straddling a region edge get tried.
constexpr uint64_t kRegion0Size = 0x10000;
constexpr uint64_t kRegion1Addr = 0x20000;
constexpr uint64_t kRegion1Size = 0x4000;
constexpr uint64_t kMemoryEnd = kRegion1Addr + kRegion1Size;

[[noreturn]] inline void Die(const char* what) {
  std::fprintf(stderr, "fuzz harness: %s\n", what);
  std::abort();
}

// Devices log every hostile chain they refuse; at fuzzing rates that is most of the time spent.
// HEARTH_FUZZ_LOG=1 keeps the logs (to see what an input does).
inline void QuietLogs() {
  const char* keep = std::getenv("HEARTH_FUZZ_LOG");
  if (keep == nullptr || *keep == '\0' || *keep == '0') SetLogLevel(LogLevel::kError);
}

// The process's guest memory, zeroed: each input starts from the same state (mapping it afresh
// for every input costs more than the rest of most inputs).
inline GuestMemory& FreshGuestMemory() {
  static GuestMemory* memory = [] {
    auto m = GuestMemory::Create({{0, kRegion0Size}, {kRegion1Addr, kRegion1Size}});
    if (!m.ok()) Die("cannot map guest memory");
    return new GuestMemory(std::move(m).value());
  }();
  if (!memory->Fill(0, 0, kRegion0Size).ok() || !memory->Fill(kRegion1Addr, 0, kRegion1Size).ok()) {
    Die("cannot clear guest memory");
  }
  return *memory;
}

inline uint64_t ConsumeAddr(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 8)) {
    case 0: return in.ConsumeIntegral<uint64_t>();
    case 1: return kMemoryEnd - in.ConsumeIntegralInRange<uint64_t>(0, 64);
    case 2: return in.ConsumeIntegralInRange<uint64_t>(0, 64);  // Where unset ring registers point.
    default: return in.ConsumeIntegralInRange<uint64_t>(0, kMemoryEnd + 64);
  }
}

inline uint32_t ConsumeLen(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: return in.ConsumeIntegral<uint32_t>();
    case 1: return in.ConsumeIntegralInRange<uint32_t>(0, 0x11000);
    default: return in.ConsumeIntegralInRange<uint32_t>(0, 600);
  }
}

// The driver side of one split queue at fixed ring addresses.
class FuzzRing {
 public:
  FuzzRing(GuestMemory& memory, uint64_t base, uint16_t size)
      : memory_(memory), size_(size), desc_(base), avail_(base + 16ull * size),
        used_((avail_ + 6 + 2ull * size + 3) & ~3ull) {}

  uint16_t size() const { return size_; }
  uint64_t desc() const { return desc_; }
  uint64_t avail() const { return avail_; }
  uint64_t used() const { return used_; }
  // Bytes the three rings take from `base`.
  static uint64_t Footprint(uint16_t size) { return 16ull * size + 6 + 2ull * size + 4 + 6 + 8ull * size; }

  void Configure(Queue& queue, bool event_idx, bool indirect) const {
    queue.set_size(size_);
    queue.set_desc_table(desc_);
    queue.set_avail_ring(avail_);
    queue.set_used_ring(used_);
    queue.set_features(event_idx, indirect);
    queue.set_ready(true);
  }

  // Writes a well-formed chain over `buffers` into the next descriptors and publishes it, as a
  // well-behaved driver would (targets whose devices check contents need such chains often).
  struct Buffer {
    uint64_t addr;
    uint32_t len;
    bool device_writes;
  };
  void PublishChain(const std::vector<Buffer>& buffers) {
    if (buffers.empty()) return;
    const uint16_t head = next_desc_;
    for (size_t i = 0; i < buffers.size(); ++i) {
      const uint16_t index = static_cast<uint16_t>((head + i) % size_);
      const bool more = i + 1 < buffers.size();
      VirtqDesc d{buffers[i].addr, buffers[i].len,
                  static_cast<uint16_t>((buffers[i].device_writes ? kVirtqDescWrite : 0) |
                                        (more ? kVirtqDescNext : 0)),
                  static_cast<uint16_t>((index + 1) % size_)};
      (void)memory_.WriteObj(desc_ + 16ull * index, d);
    }
    next_desc_ = static_cast<uint16_t>((head + buffers.size()) % size_);
    (void)memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * (avail_idx_ % size_), head);
    ++avail_idx_;
    (void)memory_.WriteObj<uint16_t>(avail_ + 2, avail_idx_);
  }

  // Applies one driver action decoded from the input. Writes may fail (addresses outside
  // guest memory): a driver can try, nothing happens.
  void Step(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 8)) {
      case 0:
      case 1: {  // A descriptor in the ring's table (index may be out of range: ignored).
        uint16_t index = in.ConsumeIntegralInRange<uint16_t>(0, size_ - 1);
        WriteDesc(desc_ + 16ull * index, in);
        break;
      }
      case 2: {  // A descriptor anywhere (an indirect table).
        uint64_t table = ConsumeAddr(in) & ~15ull;
        uint16_t index = in.ConsumeIntegralInRange<uint16_t>(0, 63);
        WriteDesc(table + 16ull * index, in);
        break;
      }
      case 3:
      case 4: {  // Publish a head.
        uint16_t head = in.ConsumeBool() ? in.ConsumeIntegral<uint16_t>()
                                          : in.ConsumeIntegralInRange<uint16_t>(0, size_ - 1);
        (void)memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * (avail_idx_ % size_), head);
        ++avail_idx_;
        (void)memory_.WriteObj<uint16_t>(avail_ + 2, avail_idx_);
        break;
      }
      case 5:  // Move the avail index anywhere.
        avail_idx_ = in.ConsumeIntegral<uint16_t>();
        (void)memory_.WriteObj<uint16_t>(avail_ + 2, avail_idx_);
        break;
      case 6:  // avail flags, used_event.
        (void)memory_.WriteObj<uint16_t>(avail_, in.ConsumeIntegral<uint16_t>());
        (void)memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * size_, in.ConsumeIntegral<uint16_t>());
        break;
      case 7:
      case 8: {  // Bytes in a data buffer.
        uint64_t addr = ConsumeAddr(in);
        auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
        (void)memory_.Write(addr, bytes);
        break;
      }
    }
  }

 private:
  void WriteDesc(uint64_t at, FuzzedDataProvider& in) {
    VirtqDesc d{};
    d.addr = ConsumeAddr(in);
    d.len = ConsumeLen(in);
    d.flags = in.ConsumeIntegralInRange<uint16_t>(0, 7);
    if (in.ConsumeProbability<float>() < 0.05f) d.flags = in.ConsumeIntegral<uint16_t>();
    d.next = in.ConsumeBool() ? in.ConsumeIntegral<uint16_t>()
                              : in.ConsumeIntegralInRange<uint16_t>(0, size_ - 1);
    (void)memory_.WriteObj(at, d);
  }

  GuestMemory& memory_;
  uint16_t size_;
  uint64_t desc_, avail_, used_;
  uint16_t avail_idx_ = 0;
  uint16_t next_desc_ = 0;
};

// Checks what the queue promises about every chain it hands a device.
inline void CheckChain(const GuestMemory& memory, const DescriptorChain& chain, uint16_t size) {
  if (chain.head >= size) Die("chain head out of range");
  uint64_t readable = 0, writable = 0;
  for (const auto& b : chain.readable) {
    if (!memory.IsValidRange(b.addr, b.len)) Die("readable buffer outside guest memory");
    readable += b.len;
  }
  for (const auto& b : chain.writable) {
    if (!memory.IsValidRange(b.addr, b.len)) Die("writable buffer outside guest memory");
    writable += b.len;
  }
  if (readable != chain.readable_bytes || writable != chain.writable_bytes) Die("chain byte counts");
  if (readable + writable > Queue::kMaxChainBytes) Die("chain larger than kMaxChainBytes");
}

}  // namespace hearth::fuzz
