// hearth_device_bench: shared pieces. The benchmarks play the guest driver on plain anonymous
// memory (tests/virtio_support VirtioDriver), kick the device the way the VMM event loop does
// (VirtioDevice::ProcessQueue on a queue notification, OnEvent for an fd the loop watches), and
// recycle the descriptors the device returned, so that what is timed is the device path itself.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>

#include "memory/guest_memory.h"
#include "tests/virtio_support/virtio_driver.h"
#include "virtio/virtio_device.h"

namespace hearth::bench {

// Everything the benchmarks share, made once in main() and handed to the registrations.
struct DeviceBenchEnv {
  GuestMemory* memory = nullptr;  // 256 MiB of plain anonymous memory at guest address 0.
  // The block image (1 GiB file on a real disk, page cache warm): made on the first call when
  // main() was not given one, so that net and queue runs do not write 1 GiB. Empty on failure.
  std::function<std::string()> image;
};

constexpr uint64_t kGuestMemoryBytes = 256ull << 20;

// Counts interrupts; a real transport would set the interrupt status and fire the irqfd.
class CountingInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t /*cause*/) override { ++raised; }
  void SetNeedsReset() override { ++needs_reset; }
  uint64_t raised = 0;
  uint64_t needs_reset = 0;
};

// The driver's side of VIRTIO_F_EVENT_IDX: after publishing avail idx `new_idx` (it was
// `old_idx`), the driver notifies only when the device asked for it (vring_need_event).
inline bool NeedsKick(const testing::VirtioDriver& driver, uint16_t old_idx, uint16_t new_idx) {
  const uint16_t event = driver.avail_event();
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

inline uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// Page-aligned data buffer from the driver's bump allocator (Linux hands the device page-cache
// and skb pages, so data buffers are page-aligned).
inline uint64_t AllocAligned(testing::VirtioDriver& driver, uint64_t bytes, uint64_t align = 4096) {
  const uint64_t raw = driver.Alloc(bytes + align);
  return AlignUp(raw, align);
}

void RegisterBlockBenchmarks(const DeviceBenchEnv& env);
void RegisterNetBenchmarks(const DeviceBenchEnv& env);
void RegisterQueueBenchmarks(const DeviceBenchEnv& env);
void RegisterVsockBenchmarks(const DeviceBenchEnv& env);

}  // namespace hearth::bench
