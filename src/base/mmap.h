// An owned memory mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/result.h"

namespace hearth {

class MmapRegion {
 public:
  MmapRegion() = default;
  ~MmapRegion() { Reset(); }
  MmapRegion(MmapRegion&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MmapRegion& operator=(MmapRegion&& other) noexcept {
    if (this != &other) {
      Reset();
      addr_ = std::exchange(other.addr_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  MmapRegion(const MmapRegion&) = delete;
  MmapRegion& operator=(const MmapRegion&) = delete;

  // Private anonymous read-write memory, zero-filled, committed lazily by the host kernel.
  static Result<MmapRegion> Anonymous(size_t size);
  // A shared mapping of `size` bytes of `fd` at offset 0 (e.g. the kvm_run page).
  static Result<MmapRegion> SharedFile(int fd, size_t size, const char* what);
  // A private copy-on-write read-write mapping of `size` bytes of `fd` at `offset`: pages load
  // lazily from the page cache (shared by every process mapping the file) and writes stay in
  // this process (snapshot memory files).
  static Result<MmapRegion> PrivateFile(int fd, size_t size, uint64_t offset, const char* what);

  uint8_t* data() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }
  void Reset();

 private:
  MmapRegion(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hearth
