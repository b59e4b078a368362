#include "memory/memory_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "base/fd.h"
#include "base/hex.h"

namespace hearth {
namespace {

bool IsZeroPage(const uint8_t* p) {
  // Word-wise: a zero check of 1 GiB runs at memory bandwidth.
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kMemoryFilePageSize / 8; ++i) {
    if (w[i] != 0) return false;
  }
  return true;
}

Status Truncate(int fd, uint64_t size, const std::string& what) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return ErrnoError("ftruncate " + what);
  return Ok();
}

}  // namespace

Result<GuestMemory> GuestMemory::CreateFromFile(const std::vector<GuestRegionSpec>& specs, int fd,
                                                const std::string& path) {
  std::vector<GuestRegionSpec> sorted = specs;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.guest_addr < b.guest_addr; });
  uint64_t total = 0;
  for (const auto& spec : sorted) {
    if (spec.size == 0 || spec.size % kMemoryFilePageSize != 0 ||
        spec.guest_addr % kMemoryFilePageSize != 0) {
      return Error("guest memory region " + Hex(spec.guest_addr) + "+" + Hex(spec.size) +
                   " is empty or not page-aligned");
    }
    total += spec.size;
  }
  ASSIGN_OR_RETURN(uint64_t file_size, RegularFileSize(fd, path));
  if (file_size != total) {
    return Error("memory file " + path + " holds " + std::to_string(file_size) +
                 " bytes, the snapshot's guest memory is " + std::to_string(total) + " bytes");
  }
  std::vector<Region> regions;
  uint64_t offset = 0;
  uint64_t prev_end = 0;
  for (const auto& spec : sorted) {
    if (!regions.empty() && spec.guest_addr < prev_end) {
      return Error("guest memory regions overlap at " + Hex(spec.guest_addr));
    }
    ASSIGN_OR_RETURN(MmapRegion mapping,
                     MmapRegion::PrivateFile(fd, spec.size, offset, "memory file"));
    regions.push_back(Region{spec.guest_addr, std::move(mapping)});
    offset += spec.size;
    prev_end = spec.guest_addr + spec.size;
  }
  return GuestMemory(std::move(regions));
}

Status SaveFullMemory(const GuestMemory& memory, int fd, const std::string& what) {
  RETURN_IF_ERROR(Truncate(fd, memory.total_size(), what));
  uint64_t file_offset = 0;
  for (const auto& region : memory.regions()) {
    const uint8_t* base = region.mapping.data();
    const uint64_t pages = region.size() / kMemoryFilePageSize;
    uint64_t p = 0;
    while (p < pages) {
      if (IsZeroPage(base + p * kMemoryFilePageSize)) {
        ++p;
        continue;
      }
      uint64_t run_end = p + 1;
      while (run_end < pages && !IsZeroPage(base + run_end * kMemoryFilePageSize)) ++run_end;
      const uint64_t addr = region.guest_addr + p * kMemoryFilePageSize;
      RETURN_IF_ERROR(memory.WriteToFile(addr, fd, file_offset + p * kMemoryFilePageSize,
                                         (run_end - p) * kMemoryFilePageSize, what));
      p = run_end;
    }
    file_offset += region.size();
  }
  return Ok();
}

Status SaveDirtyMemory(const GuestMemory& memory, int fd,
                       const std::vector<std::vector<uint64_t>>& dirty, const std::string& what) {
  if (dirty.size() != memory.regions().size()) {
    return Error(what + ": " + std::to_string(dirty.size()) + " dirty bitmaps for " +
                 std::to_string(memory.regions().size()) + " memory regions");
  }
  RETURN_IF_ERROR(Truncate(fd, memory.total_size(), what));
  uint64_t file_offset = 0;
  for (size_t r = 0; r < dirty.size(); ++r) {
    const auto& region = memory.regions()[r];
    const uint64_t pages = region.size() / kMemoryFilePageSize;
    if (dirty[r].size() * 64 < pages) return Error(what + ": dirty bitmap too short");
    auto is_dirty = [&](uint64_t p) { return (dirty[r][p / 64] >> (p % 64)) & 1; };
    uint64_t p = 0;
    while (p < pages) {
      if (!is_dirty(p)) {
        ++p;
        continue;
      }
      uint64_t run_end = p + 1;
      while (run_end < pages && is_dirty(run_end)) ++run_end;
      RETURN_IF_ERROR(memory.WriteToFile(region.guest_addr + p * kMemoryFilePageSize, fd,
                                         file_offset + p * kMemoryFilePageSize,
                                         (run_end - p) * kMemoryFilePageSize, what));
      p = run_end;
    }
    file_offset += region.size();
  }
  return Ok();
}

Status MergeDiffMemoryFile(const std::string& diff_path, const std::string& base_path) {
  ASSIGN_OR_RETURN(Fd diff, Fd::Open(diff_path, O_RDONLY));
  ASSIGN_OR_RETURN(Fd base, Fd::Open(base_path, O_WRONLY));
  ASSIGN_OR_RETURN(uint64_t diff_size, RegularFileSize(diff.get(), diff_path));
  ASSIGN_OR_RETURN(uint64_t base_size, RegularFileSize(base.get(), base_path));
  if (diff_size != base_size) {
    return Error("diff memory file " + diff_path + " (" + std::to_string(diff_size) +
                 " bytes) does not match base " + base_path + " (" + std::to_string(base_size) +
                 " bytes)");
  }
  std::vector<uint8_t> buf(1 << 20);
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < diff_size) {
    off_t data = ::lseek(diff.get(), pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // No data after pos.
      return ErrnoError("lseek SEEK_DATA " + diff_path);
    }
    off_t hole = ::lseek(diff.get(), data, SEEK_HOLE);
    if (hole < 0) return ErrnoError("lseek SEEK_HOLE " + diff_path);
    for (off_t at = data; at < hole;) {
      size_t n = static_cast<size_t>(std::min<off_t>(hole - at, static_cast<off_t>(buf.size())));
      RETURN_IF_ERROR(PreadExact(diff.get(), buf.data(), n, static_cast<uint64_t>(at), diff_path));
      for (size_t done = 0; done < n;) {
        ssize_t w = ::pwrite(base.get(), buf.data() + done, n - done, at + static_cast<off_t>(done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return ErrnoError("write " + base_path);
        done += static_cast<size_t>(w);
      }
      at += static_cast<off_t>(n);
    }
    pos = hole;
  }
  if (::fsync(base.get()) != 0) return ErrnoError("fsync " + base_path);
  return Ok();
}

}  // namespace hearth
