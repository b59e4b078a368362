#include "virtio/block/io_uring.h"

#include <liburing.h>

namespace hearth {

Result<std::unique_ptr<IoUring>> IoUring::Create(unsigned entries, int disk_fd) {
  auto ring = std::make_unique<io_uring>();
  if (int rc = io_uring_queue_init(entries, ring.get(), 0); rc < 0) {
    return ErrnoError("io_uring_queue_init", -rc);
  }
  auto eventfd = EventFd::Create(/*nonblocking=*/true);
  if (!eventfd.ok()) {
    io_uring_queue_exit(ring.get());
    return eventfd.error();
  }
  if (int rc = io_uring_register_eventfd(ring.get(), eventfd->get()); rc < 0) {
    io_uring_queue_exit(ring.get());
    return ErrnoError("io_uring_register_eventfd", -rc);
  }
  // A fixed file saves a file-table lookup per operation; optional.
  const bool fixed = io_uring_register_files(ring.get(), &disk_fd, 1) == 0;
  return std::unique_ptr<IoUring>(
      new IoUring(std::move(ring), std::move(eventfd).value(), fixed ? 0 : disk_fd, fixed));
}

IoUring::IoUring(std::unique_ptr<io_uring> ring, EventFd eventfd, int fd, bool fixed)
    : ring_(std::move(ring)), eventfd_(std::move(eventfd)), fd_(fd), fixed_(fixed) {}

IoUring::~IoUring() { io_uring_queue_exit(ring_.get()); }

Status IoUring::ReplaceFile(int disk_fd) {
  if (!fixed_) {
    fd_ = disk_fd;
    return Ok();
  }
  int rc = io_uring_register_files_update(ring_.get(), 0, &disk_fd, 1);
  if (rc == 1) return Ok();
  // Without the update, drop the fixed file (it holds the old file open) and use the plain fd.
  if (int unregistered = io_uring_unregister_files(ring_.get()); unregistered < 0) {
    return ErrnoError("io_uring_register_files_update", rc < 0 ? -rc : EIO);
  }
  fixed_ = false;
  fd_ = disk_fd;
  return Ok();
}

bool IoUring::PrepReadv(uint64_t cookie, const iovec* iov, unsigned count, uint64_t offset) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) return false;
  io_uring_prep_readv(sqe, fd_, iov, count, offset);
  if (fixed_) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, cookie);
  return true;
}

bool IoUring::PrepWritev(uint64_t cookie, const iovec* iov, unsigned count, uint64_t offset) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) return false;
  io_uring_prep_writev(sqe, fd_, iov, count, offset);
  if (fixed_) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, cookie);
  return true;
}

bool IoUring::PrepFsync(uint64_t cookie) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) return false;
  io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
  if (fixed_) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, cookie);
  return true;
}

Status IoUring::Submit() {
  for (;;) {
    int rc = io_uring_submit(ring_.get());
    if (rc >= 0) return Ok();
    if (rc == -EINTR) continue;
    return ErrnoError("io_uring_submit", -rc);
  }
}

unsigned IoUring::Reap(const std::function<void(uint64_t, int32_t)>& fn) {
  unsigned count = 0;
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(ring_.get(), &cqe) == 0 && cqe != nullptr) {
    const uint64_t cookie = io_uring_cqe_get_data64(cqe);
    const int32_t res = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    fn(cookie, res);
    ++count;
  }
  return count;
}

Status IoUring::Wait() {
  io_uring_cqe* cqe = nullptr;
  for (;;) {
    int rc = io_uring_wait_cqe(ring_.get(), &cqe);
    if (rc == 0) return Ok();
    if (rc == -EINTR) continue;
    return ErrnoError("io_uring_wait_cqe", -rc);
  }
}

Result<bool> IoUring::WaitFor(uint64_t timeout_us) {
  io_uring_cqe* cqe = nullptr;
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(timeout_us / 1'000'000);
  ts.tv_nsec = static_cast<long long>(timeout_us % 1'000'000) * 1000;
  for (;;) {
    int rc = io_uring_wait_cqe_timeout(ring_.get(), &cqe, &ts);
    if (rc == 0) return true;
    if (rc == -ETIME) return false;
    if (rc == -EINTR) continue;
    return ErrnoError("io_uring_wait_cqe_timeout", -rc);
  }
}

}  // namespace hearth
