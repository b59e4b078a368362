#include "base/fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hearth {

void Fd::Reset() {
  if (fd_ >= 0) {
    ::close(fd_);  // The one place Hearth closes an fd.
    fd_ = -1;
  }
}

Result<Fd> Fd::Open(const std::string& path, int flags, unsigned mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("open " + path);
  return Fd(fd);
}

Status PreadExact(int fd, void* buf, size_t len, uint64_t offset, const std::string& what) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + what);
    }
    if (n == 0) return Error("read " + what + ": file is truncated");
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Ok();
}

Status WriteAll(int fd, const void* buf, size_t len, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + what);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Ok();
}

Result<uint64_t> RegularFileSize(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("stat " + path);
  if (!S_ISREG(st.st_mode)) return Error(path + ": not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

Result<EventFd> EventFd::Create(bool nonblocking) {
  int fd = ::eventfd(0, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0));
  if (fd < 0) return ErrnoError("eventfd");
  return EventFd(Fd(fd));
}

Status EventFd::Signal(uint64_t value) const {
  for (;;) {
    ssize_t n = ::write(fd_.get(), &value, sizeof(value));
    if (n == sizeof(value)) return Ok();
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN means the counter is saturated: the reader is already woken.
    if (n < 0 && errno == EAGAIN) return Ok();
    return ErrnoError("eventfd write");
  }
}

Result<uint64_t> EventFd::Consume() const {
  uint64_t value = 0;
  for (;;) {
    ssize_t n = ::read(fd_.get(), &value, sizeof(value));
    if (n == sizeof(value)) return value;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return uint64_t{0};
    return ErrnoError("eventfd read");
  }
}

}  // namespace hearth
