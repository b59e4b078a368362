// A one-shot CLOCK_MONOTONIC timerfd (non-blocking, close-on-exec): the one place Hearth calls
// timerfd_create / timerfd_settime / reads a timerfd.
#pragma once

#include <memory>

#include "base/fd.h"
#include "virtio/rate_limiter/timer.h"

namespace hearth {

class TimerFd final : public MonotonicTimer {
 public:
  static Result<std::unique_ptr<TimerFd>> Create();

  uint64_t NowNs() const override;
  Status ArmAfter(uint64_t delay_ns) override;
  Status Disarm() override;
  int fd() const override { return fd_.get(); }
  void Acknowledge() override;

 private:
  explicit TimerFd(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace hearth
