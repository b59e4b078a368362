#include "vstate/unhandled_access_log.h"

#include <iomanip>

#include "base/log.h"

namespace hearth {

void UnhandledAccessLog::Note(bool mmio, uint64_t addr, bool is_write) {
  // Key ports and MMIO pages apart: MMIO keys have the top bit set.
  uint64_t key = mmio ? ((addr >> 12) | (uint64_t{1} << 63)) : addr;
  std::lock_guard lock(mu_);
  if (seen_.contains(key)) return;
  if (seen_.size() >= kMaxDistinct) {
    if (!capped_) LOG_WARN("further accesses to unhandled ports and MMIO are not logged");
    capped_ = true;
    return;
  }
  seen_.insert(key);
  LOG_WARN("guest " << (is_write ? "wrote" : "read") << " unhandled " << (mmio ? "MMIO" : "port")
                    << " 0x" << std::hex << addr << " (" << (mmio ? "reads return all ones" : "reads return 0xff")
                    << "; logged once)");
}

}  // namespace hearth
