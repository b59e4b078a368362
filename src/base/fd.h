// Owned file descriptors. Every fd in Hearth lives in one of these.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "base/result.h"

namespace hearth {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset();

  // open(2) with O_CLOEXEC added.
  static Result<Fd> Open(const std::string& path, int flags, unsigned mode = 0);

 private:
  int fd_ = -1;
};

// Reads exactly `len` bytes at `offset` (pread), failing on a short file.
Status PreadExact(int fd, void* buf, size_t len, uint64_t offset, const std::string& what);
// Writes all of `len` bytes (write), retrying on EINTR and short writes.
Status WriteAll(int fd, const void* buf, size_t len, const std::string& what);
// Size of a regular file, with an error naming `path` for anything that is not one.
Result<uint64_t> RegularFileSize(int fd, const std::string& path);

// An eventfd: a counter other threads (and KVM) can signal and epoll can watch.
class EventFd {
 public:
  static Result<EventFd> Create(bool nonblocking = true);
  Status Signal(uint64_t value = 1) const;
  // Reads and resets the counter; 0 when nothing was signalled (non-blocking).
  Result<uint64_t> Consume() const;
  int get() const { return fd_.get(); }

 private:
  explicit EventFd(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace hearth
