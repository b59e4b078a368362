#include "virtio/block/iovec_cursor.h"

namespace hearth {

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
