// An address space of devices (one for port I/O, one for MMIO). A device sees reads and writes
// at an offset into its own range, never an absolute address. The layout is fixed before the
// vCPUs start and is read-only afterwards, so vCPU threads look up in parallel without a lock;
// a device reachable from several threads serialises itself (see devices/locked_device.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace hearth {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void Read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Claims [base, base+len) for `device`; fails on overlap or an empty/wrapping range.
  Status Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len);

  // False when nothing is mapped at `addr` (the caller decides what an unclaimed access does).
  // An access must lie inside one device's range.
  bool Read(uint64_t addr, std::span<uint8_t> data) const;
  bool Write(uint64_t addr, std::span<const uint8_t> data) const;

 private:
  struct Entry {
    uint64_t base;
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  const Entry* Find(uint64_t addr, uint64_t len) const;

  std::string name_;
  std::vector<Entry> entries_;  // Sorted by base, non-overlapping.
};

}  // namespace hearth
