#include "memory/guest_memory.h"

#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "base/hex.h"

namespace hearth {
namespace {
constexpr uint64_t kPageSize = 4096;


Error RangeError(uint64_t addr, uint64_t len) {
  return Error("guest memory access [" + Hex(addr) + ", +" + Hex(len) + ") is outside guest RAM");
}
}  // namespace

Result<GuestMemory> GuestMemory::Create(const std::vector<GuestRegionSpec>& specs) {
  std::vector<GuestRegionSpec> sorted = specs;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.guest_addr < b.guest_addr; });
  std::vector<Region> regions;
  uint64_t prev_end = 0;
  for (const auto& spec : sorted) {
    if (spec.size == 0 || spec.size % kPageSize != 0 || spec.guest_addr % kPageSize != 0) {
      return Error("guest memory region " + Hex(spec.guest_addr) + "+" + Hex(spec.size) +
                   " is empty or not page-aligned");
    }
    if (spec.guest_addr + spec.size < spec.guest_addr) {
      return Error("guest memory region " + Hex(spec.guest_addr) + " wraps around");
    }
    if (!regions.empty() && spec.guest_addr < prev_end) {
      return Error("guest memory regions overlap at " + Hex(spec.guest_addr));
    }
    auto mapping = MmapRegion::Anonymous(spec.size);
    if (!mapping.ok()) return mapping.error().Wrap("guest memory");
    regions.push_back(Region{spec.guest_addr, std::move(mapping).value()});
    prev_end = spec.guest_addr + spec.size;
  }
  return GuestMemory(std::move(regions));
}

uint64_t GuestMemory::total_size() const {
  uint64_t total = 0;
  for (const auto& r : regions_) total += r.size();
  return total;
}

uint8_t* GuestMemory::HostRange(uint64_t addr, uint64_t len) const {
  for (const auto& r : regions_) {
    if (addr >= r.guest_addr && addr < r.end()) {
      uint64_t offset = addr - r.guest_addr;
      if (len > r.size() - offset) return nullptr;
      return r.mapping.data() + offset;
    }
  }
  return nullptr;
}

bool GuestMemory::IsValidRange(uint64_t addr, uint64_t len) const {
  return HostRange(addr, len) != nullptr;
}

Status GuestMemory::Read(uint64_t addr, std::span<uint8_t> out) const {
  const uint8_t* src = HostRange(addr, out.size());
  if (src == nullptr) return RangeError(addr, out.size());
  if (!out.empty()) std::memcpy(out.data(), src, out.size());
  return Ok();
}

Status GuestMemory::Write(uint64_t addr, std::span<const uint8_t> data) {
  uint8_t* dst = HostRange(addr, data.size());
  if (dst == nullptr) return RangeError(addr, data.size());
  MarkWritten(addr, data.size());
  if (!data.empty()) std::memcpy(dst, data.data(), data.size());
  return Ok();
}

Status GuestMemory::Fill(uint64_t addr, uint8_t value, uint64_t len) {
  uint8_t* dst = HostRange(addr, len);
  if (dst == nullptr) return RangeError(addr, len);
  MarkWritten(addr, len);
  std::memset(dst, value, len);
  return Ok();
}

Status GuestMemory::ReadFromFile(uint64_t addr, int fd, uint64_t file_offset, uint64_t len,
                                 const std::string& what) {
  uint8_t* dst = HostRange(addr, len);
  if (dst == nullptr) return RangeError(addr, len).Wrap(what);
  MarkWritten(addr, len);
  while (len > 0) {
    ssize_t n = ::pread(fd, dst, len, static_cast<off_t>(file_offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + what);
    }
    if (n == 0) return Error("read " + what + ": file is truncated");
    dst += n;
    len -= static_cast<uint64_t>(n);
    file_offset += static_cast<uint64_t>(n);
  }
  return Ok();
}

Status GuestMemory::WriteToFile(uint64_t addr, int fd, uint64_t file_offset, uint64_t len,
                                const std::string& what) const {
  const uint8_t* src = HostRange(addr, len);
  if (src == nullptr) return RangeError(addr, len).Wrap(what);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, src, len, static_cast<off_t>(file_offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + what);
    }
    if (n == 0) return Error("write " + what + ": no progress");
    src += n;
    len -= static_cast<uint64_t>(n);
    file_offset += static_cast<uint64_t>(n);
  }
  return Ok();
}

Status GuestMemory::AppendIoVecs(uint64_t addr, uint64_t len, std::vector<iovec>& out) const {
  uint8_t* p = HostRange(addr, len);
  if (p == nullptr) return RangeError(addr, len);
  MarkWritten(addr, len);
  if (len > 0) out.push_back(iovec{p, len});
  return Ok();
}

void GuestMemory::EnableWriteTracking() {
  if (!written_.empty()) return;
  for (const auto& r : regions_) {
    const uint64_t words = (r.size() / kPageSize + 63) / 64;
    auto bits = std::make_unique<std::atomic<uint64_t>[]>(words);
    for (uint64_t i = 0; i < words; ++i) bits[i].store(0, std::memory_order_relaxed);
    written_.push_back(std::move(bits));
  }
}

void GuestMemory::MarkWritten(uint64_t addr, uint64_t len) const {
  if (written_.empty() || len == 0) return;
  for (size_t i = 0; i < regions_.size(); ++i) {
    const auto& r = regions_[i];
    if (addr < r.guest_addr || addr >= r.end()) continue;
    const uint64_t first = (addr - r.guest_addr) / kPageSize;
    const uint64_t last = (addr - r.guest_addr + len - 1) / kPageSize;
    for (uint64_t p = first; p <= last; ++p) {
      written_[i][p / 64].fetch_or(uint64_t{1} << (p % 64), std::memory_order_relaxed);
    }
    return;
  }
}

std::vector<std::vector<uint64_t>> GuestMemory::TakeWrittenBitmaps() {
  std::vector<std::vector<uint64_t>> out;
  for (size_t i = 0; i < written_.size(); ++i) {
    const uint64_t words = (regions_[i].size() / kPageSize + 63) / 64;
    std::vector<uint64_t> bits(words);
    for (uint64_t w = 0; w < words; ++w) bits[w] = written_[i][w].exchange(0, std::memory_order_relaxed);
    out.push_back(std::move(bits));
  }
  return out;
}

}  // namespace hearth
