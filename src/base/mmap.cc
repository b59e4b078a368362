#include "base/mmap.h"

#include <sys/mman.h>

#include <string>

namespace hearth {

Result<MmapRegion> MmapRegion::Anonymous(size_t size) {
  // No MAP_NORESERVE: the host's overcommit check then refuses a guest larger than the host
  // could ever back, instead of the guest dying later on an unbacked page.
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) return ErrnoError("mmap " + std::to_string(size >> 20) + " MiB");
  return MmapRegion(addr, size);
}

Result<MmapRegion> MmapRegion::SharedFile(int fd, size_t size, const char* what) {
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return ErrnoError(std::string("mmap ") + what);
  return MmapRegion(addr, size);
}

Result<MmapRegion> MmapRegion::PrivateFile(int fd, size_t size, uint64_t offset, const char* what) {
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
                      static_cast<off_t>(offset));
  if (addr == MAP_FAILED) return ErrnoError(std::string("mmap ") + what);
  return MmapRegion(addr, size);
}

void MmapRegion::Reset() {
  if (addr_ != nullptr) {
    ::munmap(addr_, size_);  // The one place Hearth unmaps.
    addr_ = nullptr;
    size_ = 0;
  }
}

}  // namespace hearth
