// A small owned io_uring for one disk file: readv/writev/fdatasync submissions tagged with a
// 64-bit cookie, completions announced on an eventfd the VMM event loop watches.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "base/fd.h"
#include "base/result.h"

struct io_uring;

namespace hearth {

class IoUring {
 public:
  // Sets up a ring of `entries` submissions for `disk_fd` (registered as a fixed file when the
  // host allows) and its completion eventfd. Fails with the call that failed, e.g.
  // "io_uring_queue_init: Function not implemented".
  static Result<std::unique_ptr<IoUring>> Create(unsigned entries, int disk_fd);
  ~IoUring();
  IoUring(const IoUring&) = delete;
  IoUring& operator=(const IoUring&) = delete;

  int event_fd() const { return eventfd_.get(); }

  // Queue one operation; false when the submission ring is full (call Submit and retry).
  bool PrepReadv(uint64_t cookie, const iovec* iov, unsigned count, uint64_t offset);
  bool PrepWritev(uint64_t cookie, const iovec* iov, unsigned count, uint64_t offset);
  bool PrepFsync(uint64_t cookie);
  // Points later operations at another disk file (nothing may be in flight).
  Status ReplaceFile(int disk_fd);
  // Hands everything queued to the kernel.
  Status Submit();
  // Calls `fn(cookie, res)` for every completion available now; returns how many.
  unsigned Reap(const std::function<void(uint64_t, int32_t)>& fn);
  // Blocks until at least one completion is available.
  Status Wait();
  // Blocks until at least one completion is available (true) or `timeout_us` passed (false).
  Result<bool> WaitFor(uint64_t timeout_us);
  // Clears the eventfd (before reaping, so a completion that lands after the reap wakes the
  // loop again).
  void ConsumeEvent() { (void)eventfd_.Consume(); }

 private:
  IoUring(std::unique_ptr<io_uring> ring, EventFd eventfd, int fd, bool fixed);

  std::unique_ptr<io_uring> ring_;
  EventFd eventfd_;
  int fd_;  // The disk fd, or 0 (its fixed-file index) when registered.
  bool fixed_;
};

}  // namespace hearth
