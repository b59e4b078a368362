#include "virtio/rate_limiter/timer_fd.h"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <limits>

namespace hearth {
namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000;

timespec ToTimespec(uint64_t ns) {
  // time_t is 64-bit here: every uint64_t nanosecond count fits as seconds + nanoseconds.
  return timespec{static_cast<time_t>(ns / kNsPerSec), static_cast<long>(ns % kNsPerSec)};
}

}  // namespace

Result<std::unique_ptr<TimerFd>> TimerFd::Create() {
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return ErrnoError("timerfd_create");
  return std::unique_ptr<TimerFd>(new TimerFd(Fd(fd)));
}

uint64_t TimerFd::NowNs() const {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

Status TimerFd::ArmAfter(uint64_t delay_ns) {
  // A zero it_value would disarm the timer instead of firing it at once.
  itimerspec spec{};
  spec.it_value = ToTimespec(delay_ns == 0 ? 1 : delay_ns);
  if (::timerfd_settime(fd_.get(), 0, &spec, nullptr) != 0) return ErrnoError("timerfd_settime");
  return Ok();
}

Status TimerFd::Disarm() {
  itimerspec spec{};
  if (::timerfd_settime(fd_.get(), 0, &spec, nullptr) != 0) return ErrnoError("timerfd_settime");
  return Ok();
}

void TimerFd::Acknowledge() {
  uint64_t expirations = 0;
  // EAGAIN (nothing expired yet) is fine: the fd is non-blocking.
  while (::read(fd_.get(), &expirations, sizeof(expirations)) < 0 && errno == EINTR) {
  }
}

}  // namespace hearth
