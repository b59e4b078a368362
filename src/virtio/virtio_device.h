// What a virtio device is to its transport: feature bits, a config space, queues, and
// activate/reset. The transport (virtio-mmio) owns the queues and the driver-facing state
// machine; the device owns its backend and processes its queues.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "devices/trigger.h"
#include "memory/guest_memory.h"
#include "virtio/queue.h"

namespace hearth {

// Feature bits common to every device.
constexpr uint64_t kVirtioFRingIndirectDesc = 1ull << 28;
constexpr uint64_t kVirtioFRingEventIdx = 1ull << 29;
constexpr uint64_t kVirtioFVersion1 = 1ull << 32;

// Device ids.
constexpr uint32_t kVirtioIdNet = 1;
constexpr uint32_t kVirtioIdBlock = 2;
constexpr uint32_t kVirtioIdVsock = 19;

// Interrupt status bits.
constexpr uint32_t kVirtioIntUsedBuffer = 1;
constexpr uint32_t kVirtioIntConfigChange = 2;

// How a device raises its interrupt: sets the cause in the transport's interrupt status and
// fires the line.
class VirtioInterrupt {
 public:
  virtual ~VirtioInterrupt() = default;
  virtual void Raise(uint32_t cause) = 0;
  // The device hit a broken ring (ChainError::needs_reset): the transport reports
  // DEVICE_NEEDS_RESET and tells the driver with a config-change interrupt.
  virtual void SetNeedsReset() = 0;
  // The device changed its config space (e.g. a drive's capacity): the transport bumps the
  // config generation and raises a config-change interrupt.
  virtual void SignalConfigChange() { Raise(kVirtioIntConfigChange); }
};

// Everything an activated device works with. The queues belong to the transport; the device
// uses them only between Activate and Reset.
struct VirtioActivation {
  GuestMemory* memory = nullptr;
  std::vector<Queue>* queues = nullptr;
  std::shared_ptr<VirtioInterrupt> interrupt;
  uint64_t acked_features = 0;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_type() const = 0;
  virtual uint64_t device_features() const = 0;
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  // Config space access at an offset into the device's config structure. Out-of-range reads
  // return zeros; out-of-range or read-only writes are ignored.
  virtual void ReadConfig(uint64_t offset, std::span<uint8_t> data) const = 0;
  virtual void WriteConfig(uint64_t offset, std::span<const uint8_t> data) = 0;

  // The driver set DRIVER_OK. A failure makes the transport report DEVICE_NEEDS_RESET.
  virtual Status Activate(VirtioActivation activation) = 0;
  // The driver wrote 0 to status: drop every reference to guest buffers.
  virtual void Reset() = 0;
  // The driver kicked queue `index` (runs on the VMM event-loop thread).
  virtual void ProcessQueue(uint16_t index) = 0;
  // Whether ProcessQueue may be called.
  virtual bool activated() const = 0;

  // File descriptors the VMM event loop watches for this device once it is activated (a tap,
  // an io_uring completion eventfd, a timerfd), with their epoll events. Use EPOLLET where a
  // source can stay readable while the guest gives no buffers, so nothing busy-loops. The
  // VMM calls OnEvent for them on its thread, under the same lock as the transport.
  struct EventSource {
    int fd;
    uint32_t events;
  };
  virtual std::vector<EventSource> event_sources() const { return {}; }
  virtual void OnEvent(int /*fd*/, uint32_t /*events*/) {}

  // Device-specific runtime state for snapshots, beyond what the transport saves (features,
  // queues) and what the VM configuration rebuilds (backing file, tap, MAC): e.g. a rate
  // limiter's remaining budget, vsock connections. Opaque bytes in the device's own versioned
  // encoding; RestoreState runs after the device is built from its configuration and before
  // the transport re-activates it, and must re-check everything (the bytes come from a file).
  // The default: a device with no such state, which refuses any.
  virtual std::vector<uint8_t> SaveState() const { return {}; }
  // Before a snapshot (vCPUs paused, on the VMM thread, before any state is taken): finish
  // everything the device took from its rings and has not returned yet (e.g. disk I/O in
  // flight), writing the used elements and raising the interrupts, so that the saved rings,
  // guest memory and interrupt state hold the whole truth. Bounded in time; an error refuses
  // the snapshot.
  virtual Status PrepareForSnapshot() { return Ok(); }
  virtual Status RestoreState(std::span<const uint8_t> state) {
    if (!state.empty()) {
      return Error("device type " + std::to_string(device_type()) +
                   ": the snapshot holds device state this device does not know");
    }
    return Ok();
  }
};

}  // namespace hearth
