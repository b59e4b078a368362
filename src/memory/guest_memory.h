// Guest physical memory: a set of non-overlapping regions of anonymous host memory. Everything
// outside the VMM's loaders reaches guest memory only through the bounds-checked accessors
// here; a host pointer never leaves this class (and the virtio queue, later).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/mmap.h"
#include "base/result.h"

namespace hearth {

struct GuestRegionSpec {
  uint64_t guest_addr;
  uint64_t size;
};

class GuestMemory {
 public:
  struct Region {
    uint64_t guest_addr;
    MmapRegion mapping;
    uint64_t size() const { return mapping.size(); }
    uint64_t end() const { return guest_addr + mapping.size(); }
  };

  // Maps each region; they must be page-aligned, non-empty and must not overlap.
  static Result<GuestMemory> Create(const std::vector<GuestRegionSpec>& specs);
  // Maps each region MAP_PRIVATE from snapshot memory file `fd` (regions laid out back to back
  // in guest address order, see memory_file.h), which must be exactly as large as the regions.
  // Pages load lazily from the page cache, shared between every VM restored from the file.
  static Result<GuestMemory> CreateFromFile(const std::vector<GuestRegionSpec>& specs, int fd,
                                            const std::string& path);

  // For registering the mappings with KVM (and, later, snapshotting them).
  const std::vector<Region>& regions() const { return regions_; }
  uint64_t total_size() const;
  // One past the highest guest-physical RAM address.
  uint64_t end_addr() const { return regions_.empty() ? 0 : regions_.back().end(); }

  // True when [addr, addr+len) lies entirely inside one region (len 0 counts when addr does).
  bool IsValidRange(uint64_t addr, uint64_t len) const;

  Status Read(uint64_t addr, std::span<uint8_t> out) const;
  Status Write(uint64_t addr, std::span<const uint8_t> data);
  Status Fill(uint64_t addr, uint8_t value, uint64_t len);
  // Copies `len` bytes of file `fd` at `file_offset` into guest memory, with no bounce buffer.
  Status ReadFromFile(uint64_t addr, int fd, uint64_t file_offset, uint64_t len,
                      const std::string& what);

  // Copies `len` bytes of guest memory at `addr` to file `fd` at `file_offset` (pwrite).
  Status WriteToFile(uint64_t addr, int fd, uint64_t file_offset, uint64_t len,
                     const std::string& what) const;
  // Appends host iovecs covering the checked guest range [addr, addr+len), for readv/writev and
  // io_uring. The only way device code gets host addresses: the range is validated first, and
  // the iovecs stay valid as long as this GuestMemory (regions never move or shrink).
  Status AppendIoVecs(uint64_t addr, uint64_t len, std::vector<iovec>& out) const;

  // Tracks the pages the VMM itself writes (devices filling buffers and used rings, loaders),
  // which KVM's dirty log does not see: for Diff snapshots, together with KVM's log. Off by
  // default; enable before any device runs. Ranges handed out by AppendIoVecs count as
  // written (the caller may read or write them).
  void EnableWriteTracking();
  bool write_tracking() const { return !written_.empty(); }
  // One bitmap per region (bit p = page p written since the last call); clears them.
  std::vector<std::vector<uint64_t>> TakeWrittenBitmaps();

  template <typename T>
  Result<T> ReadObj(uint64_t addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    RETURN_IF_ERROR(Read(addr, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
    return value;
  }
  template <typename T>
  Status WriteObj(uint64_t addr, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(addr, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 private:
  explicit GuestMemory(std::vector<Region> regions) : regions_(std::move(regions)) {}
  // Host address of [addr, addr+len) or nullptr when not inside one region.
  uint8_t* HostRange(uint64_t addr, uint64_t len) const;
  // Records [addr, addr+len) (already checked to be inside one region) as written.
  void MarkWritten(uint64_t addr, uint64_t len) const;

  std::vector<Region> regions_;  // Sorted by guest_addr.
  // Per region, one bit per page, when write tracking is on (empty otherwise).
  std::vector<std::unique_ptr<std::atomic<uint64_t>[]>> written_;

  friend class KvmMemoryBinder;  // Registers the host mappings as KVM memory slots.
};

}  // namespace hearth
