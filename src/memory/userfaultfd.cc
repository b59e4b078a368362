#include "memory/userfaultfd.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace hearth {
namespace {

Status Api(int fd) {
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(fd, UFFDIO_API, &api) != 0) return ErrnoError("UFFDIO_API");
  return Ok();
}

}  // namespace

Result<Userfaultfd> Userfaultfd::Create() {
  int fd = -1;
  auto dev = Fd::Open("/dev/userfaultfd", O_RDWR);
  if (dev.ok()) {
    fd = ::ioctl(dev->get(), USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
  }
  if (fd < 0) {
    fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (fd < 0) {
      return ErrnoError("userfaultfd (neither /dev/userfaultfd nor the system call is usable)");
    }
  }
  Userfaultfd uffd{Fd(fd)};
  RETURN_IF_ERROR(Api(fd));
  return uffd;
}

Status Userfaultfd::RegisterMissing(void* addr, size_t len) {
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(addr);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(fd_.get(), UFFDIO_REGISTER, &reg) != 0) return ErrnoError("UFFDIO_REGISTER");
  return Ok();
}

Result<std::optional<uffd_msg>> Userfaultfd::ReadEvent() {
  uffd_msg msg{};
  for (;;) {
    ssize_t n = ::read(fd_.get(), &msg, sizeof msg);
    if (n == sizeof msg) return std::optional<uffd_msg>(msg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return std::optional<uffd_msg>();
    if (n < 0) return ErrnoError("read userfaultfd");
    return Error("read userfaultfd: short event");
  }
}

Status Userfaultfd::Copy(uint64_t dst, const void* src, size_t len) {
  uffdio_copy copy{};
  copy.dst = dst;
  copy.src = reinterpret_cast<uint64_t>(src);
  copy.len = len;
  while (::ioctl(fd_.get(), UFFDIO_COPY, &copy) != 0) {
    if (errno == EEXIST) return Ok();
    if (errno == EAGAIN || errno == EINTR) {
      copy.copy = 0;
      continue;
    }
    return ErrnoError("UFFDIO_COPY");
  }
  return Ok();
}

Status Userfaultfd::Zero(uint64_t dst, size_t len) {
  uffdio_zeropage zero{};
  zero.range.start = dst;
  zero.range.len = len;
  if (::ioctl(fd_.get(), UFFDIO_ZEROPAGE, &zero) != 0 && errno != EEXIST) return ErrnoError("UFFDIO_ZEROPAGE");
  return Ok();
}

}  // namespace hearth
