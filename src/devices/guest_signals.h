// One-byte I/O ports through which a guest talks to the VMM itself.
//  - Boot timer (port 0x3f0, Firecracker's): the guest writes 123 when it reaches user space (or
//    Hearth's in-kernel agent, when it is ready for init); the VMM logs the time since it started.
//  - Power (port 0x3f4, Hearth's): 0 = power off, 1 = the guest kernel panicked. There is no
//    ACPI, so this is how a guest powers off; the bundled guest kernel uses it.
#pragma once

#include <cstdint>
#include <functional>

#include "bus/bus.h"

namespace hearth {

constexpr uint16_t kBootTimerPort = 0x3f0;
constexpr uint8_t kBootCompleteValue = 123;
constexpr uint16_t kPowerPort = 0x3f4;
constexpr uint8_t kPowerOffValue = 0;
constexpr uint8_t kPanicValue = 1;

class BootTimer : public BusDevice {
 public:
  explicit BootTimer(std::function<void()> on_boot_complete)
      : on_boot_complete_(std::move(on_boot_complete)) {}
  void Read(uint64_t, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_boot_complete_;
};

class PowerPort : public BusDevice {
 public:
  PowerPort(std::function<void()> on_power_off, std::function<void()> on_panic)
      : on_power_off_(std::move(on_power_off)), on_panic_(std::move(on_panic)) {}
  void Read(uint64_t, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void()> on_power_off_;
  std::function<void()> on_panic_;
};

}  // namespace hearth
