#include "virtio/block/guest_iovec.h"

#include <sstream>

namespace hearth {

Status AppendGuestIovecs(const GuestMemory& memory, uint64_t addr, uint64_t len,
                         std::vector<iovec>& out) {
  for (const auto& region : memory.regions()) {
    if (addr < region.guest_addr || addr >= region.end()) continue;
    const uint64_t offset = addr - region.guest_addr;
    if (len > region.size() - offset) break;
    if (len > 0) out.push_back(iovec{region.mapping.data() + offset, static_cast<size_t>(len)});
    return Ok();
  }
  std::ostringstream s;
  s << "guest memory access [0x" << std::hex << addr << ", +0x" << len << ") is outside guest RAM";
  return Error(s.str());
}

void AdvanceIovecs(std::vector<iovec>& iov, size_t* start, uint64_t bytes) {
  while (bytes > 0 && *start < iov.size()) {
    iovec& v = iov[*start];
    if (bytes < v.iov_len) {
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + bytes;
      v.iov_len -= bytes;
      return;
    }
    bytes -= v.iov_len;
    ++*start;
  }
}

}  // namespace hearth
