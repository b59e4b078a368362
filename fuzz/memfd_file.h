// A memfd that code under test opens by its /proc path, as it would open a file.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hearth::fuzz {

class MemfdFile {
 public:
  explicit MemfdFile(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) Fail("memfd_create");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemfdFile(const MemfdFile&) = delete;
  MemfdFile& operator=(const MemfdFile&) = delete;

  const std::string& path() const { return path_; }
  // Replaces the contents with `size` bytes of `data` (or zeros when `data` is null).
  void Set(const uint8_t* data, size_t size) const {
    if (::ftruncate(fd_, 0) != 0) Fail("ftruncate");
    if (data == nullptr) {
      if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) Fail("ftruncate");
      return;
    }
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) Fail("pwrite");
      done += static_cast<size_t>(n);
    }
  }

 private:
  [[noreturn]] static void Fail(const char* what) {
    std::fprintf(stderr, "fuzz harness: %s failed\n", what);
    std::abort();
  }
  int fd_;  // Lives as long as the process (the targets keep one per process).
  std::string path_;
};

}  // namespace hearth::fuzz
