// Virtio devices on the MMIO bus: each gets a 4 KiB window in the MMIO hole and an IRQ from
// one allocator, an irqfd for its interrupt, an ioeventfd per queue (kicks go straight to the
// VMM thread, not through a vCPU exit), and a `virtio_mmio.device=` entry on the kernel
// command line so the guest finds it without ACPI or device tree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "base/fd.h"
#include "base/result.h"
#include "boot/cmdline.h"
#include "bus/bus.h"
#include "devices/locked_device.h"
#include "virtio/mmio_transport.h"
#include "vstate/vm.h"

namespace hearth {

class MmioDevices {
 public:
  static constexpr uint64_t kWindowSize = 0x1000;
  static constexpr uint32_t kFirstIrq = 5;
  static constexpr uint32_t kLastIrq = 23;  // The IOAPIC has 24 pins.

  struct Slot {
    uint64_t addr;
    uint32_t irq;
  };
  struct Attached {
    std::string id;
    Slot slot;
    std::shared_ptr<LockedDevice<MmioTransport>> transport;
    std::vector<EventFd> queue_events;
  };

  explicit MmioDevices(uint64_t base) : next_addr_(base) {}

  // Places `device` on the bus and announces it on `cmdline`.
  Status Attach(const std::string& id, std::shared_ptr<VirtioDevice> device, Vm& vm, Bus& mmio,
                Cmdline& cmdline);
  // Watches every queue kick and device event source on `loop` (the VMM thread).
  Status Watch(EventLoop& loop);
  // Stops watching them (pause, teardown); kicks wait in their eventfds meanwhile.
  void Unwatch(EventLoop& loop);
  // The device attached under `id`, or null.
  Attached* Find(const std::string& id);
  const std::vector<Attached>& attached() const { return attached_; }

 private:
  Result<Slot> Allocate();

  uint64_t next_addr_;
  uint32_t next_irq_ = kFirstIrq;
  std::vector<Attached> attached_;
};

}  // namespace hearth
