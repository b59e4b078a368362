// Snapshot memory files. A memory file holds guest RAM regions back to back in guest address
// order (region i at the sum of the sizes before it), exactly total_size() bytes.
//  - Full: every page; all-zero pages are left as holes (a sparse file reads back as zeros).
//  - Diff: only the pages the dirty bitmaps mark, at their offsets; the rest are holes. A diff
//    is applied onto its base with MergeDiffMemoryFile (the data extents of the diff).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace hearth {

inline constexpr uint64_t kMemoryFilePageSize = 4096;

Status SaveFullMemory(const GuestMemory& memory, int fd, const std::string& what);

// `dirty[i]` is region i's bitmap (bit p = page p written), as KVM_GET_DIRTY_LOG returns it.
Status SaveDirtyMemory(const GuestMemory& memory, int fd,
                       const std::vector<std::vector<uint64_t>>& dirty, const std::string& what);

// Copies every data extent of the Diff file `diff_path` onto `base_path` in place (fsynced).
// Both must have the same size.
Status MergeDiffMemoryFile(const std::string& diff_path, const std::string& base_path);

}  // namespace hearth
