// userfaultfd, wrapped once (every ioctl on a uffd goes through here): the VMM creates one and
// registers guest memory on it for the Uffd snapshot backend; a page-fault handler process
// (tools/uffd_handler) reads its fault events and resolves them with Copy/Zero.
#pragma once

#include <linux/userfaultfd.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/fd.h"
#include "base/result.h"

namespace hearth {

class Userfaultfd {
 public:
  // Through /dev/userfaultfd when it can be opened (works for an unprivileged, jailed VMM the
  // jailer gave the node to), else the userfaultfd(2) system call. Non-blocking, close-on-exec.
  static Result<Userfaultfd> Create();
  explicit Userfaultfd(Fd fd) : fd_(std::move(fd)) {}

  // Faults on missing pages of [addr, addr+len) are reported on this fd (UFFDIO_REGISTER).
  Status RegisterMissing(void* addr, size_t len);
  // The next event, or nothing when none is pending (EAGAIN). Fails when the fd is closed.
  Result<std::optional<uffd_msg>> ReadEvent();
  // Resolves a missing-page fault by copying `len` bytes from `src` (UFFDIO_COPY). A page
  // another thread already filled (EEXIST) counts as done.
  Status Copy(uint64_t dst, const void* src, size_t len);
  Status Zero(uint64_t dst, size_t len);

  int fd() const { return fd_.get(); }
  Fd Release() { return std::move(fd_); }

 private:
  Fd fd_;
};

}  // namespace hearth
