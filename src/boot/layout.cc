#include "boot/layout.h"

#include <algorithm>

namespace hearth::layout {

std::vector<GuestRegionSpec> RamRegions(uint64_t mem_bytes) {
  std::vector<GuestRegionSpec> regions;
  uint64_t low = std::min(mem_bytes, kMmioHoleStart);
  regions.push_back({0, low});
  if (mem_bytes > low) regions.push_back({kMmioHoleEnd, mem_bytes - low});
  return regions;
}

uint64_t LowMemoryEnd(const GuestMemory& memory) {
  uint64_t end = 0;
  for (const auto& r : memory.regions()) {
    if (r.guest_addr < kMmioHoleStart) end = std::max(end, std::min(r.end(), kMmioHoleStart));
  }
  return end;
}

}  // namespace hearth::layout
