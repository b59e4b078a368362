// Host iovecs for checked ranges of guest memory, so file I/O can move bytes straight between
// the image and guest RAM (preadv/pwritev, io_uring readv/writev) without a bounce buffer.
//
// TO MOVE: this belongs in src/memory as a GuestMemory member (proposed:
//   Status GuestMemory::AppendIovecs(uint64_t addr, uint64_t len, std::vector<iovec>& out) const;
// bounds-checked exactly like Read/Write). It lives here only until the memory module grows it;
// it uses nothing but GuestMemory's public regions(). The host pointers it makes never leave the
// block device, and are used only between Activate and Reset, while the mappings are alive.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace hearth {

// Appends the host iovec for [addr, addr+len), which must lie inside one guest region. A zero
// length appends nothing (but addr must still be inside guest memory).
Status AppendGuestIovecs(const GuestMemory& memory, uint64_t addr, uint64_t len,
                         std::vector<iovec>& out);

// Drops the first `bytes` bytes from iov[*start..], advancing *start past consumed entries and
// trimming the first remaining one: used to continue after a short read or write.
void AdvanceIovecs(std::vector<iovec>& iov, size_t* start, uint64_t bytes);

}  // namespace hearth
