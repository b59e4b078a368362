// Serialises a device that several threads reach: vCPU threads through the bus, and the VMM
// thread for host-side events (serial input, Ctrl-Alt-Del). One lock per device.
#pragma once

#include <mutex>
#include <utility>

#include "bus/bus.h"

namespace hearth {

template <typename Device>
class LockedDevice : public BusDevice {
 public:
  template <typename... Args>
  explicit LockedDevice(Args&&... args) : device_(std::forward<Args>(args)...) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mu_);
    device_.Read(offset, data);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    std::lock_guard lock(mu_);
    device_.Write(offset, data);
  }
  // Runs `fn(device)` under the device's lock.
  template <typename Fn>
  auto With(Fn&& fn) {
    std::lock_guard lock(mu_);
    return fn(device_);
  }

 private:
  std::mutex mu_;
  Device device_;
};

}  // namespace hearth
