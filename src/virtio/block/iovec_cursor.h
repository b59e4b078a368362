// Continuing an iovec list after a short read or write.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hearth {

// Drops the first `bytes` bytes from iov[*start..], advancing *start past consumed entries and
// trimming the first remaining one.
void AdvanceIovecs(std::vector<iovec>& iov, size_t* start, uint64_t bytes);

}  // namespace hearth
