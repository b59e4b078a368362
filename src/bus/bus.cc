#include "bus/bus.h"

#include <algorithm>
#include <sstream>

namespace hearth {

Status Bus::Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len) {
  if (len == 0 || base + len < base) {
    std::ostringstream s;
    s << name_ << " bus: invalid range 0x" << std::hex << base << "+0x" << len;
    return Error(s.str());
  }
  for (const auto& e : entries_) {
    if (base < e.base + e.len && e.base < base + len) {
      std::ostringstream s;
      s << name_ << " bus: range 0x" << std::hex << base << "+0x" << len
        << " overlaps the device at 0x" << e.base;
      return Error(s.str());
    }
  }
  entries_.push_back(Entry{base, len, std::move(device)});
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.base < b.base; });
  return Ok();
}

const Bus::Entry* Bus::Find(uint64_t addr, uint64_t len) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), addr,
                             [](uint64_t a, const Entry& e) { return a < e.base; });
  if (it == entries_.begin()) return nullptr;
  const Entry& e = *std::prev(it);
  uint64_t offset = addr - e.base;
  if (offset >= e.len || len > e.len - offset) return nullptr;
  return &e;
}

bool Bus::Read(uint64_t addr, std::span<uint8_t> data) const {
  const Entry* e = Find(addr, data.size());
  if (e == nullptr) return false;
  e->device->Read(addr - e->base, data);
  return true;
}

bool Bus::Write(uint64_t addr, std::span<const uint8_t> data) const {
  const Entry* e = Find(addr, data.size());
  if (e == nullptr) return false;
  e->device->Write(addr - e->base, data);
  return true;
}

}  // namespace hearth
