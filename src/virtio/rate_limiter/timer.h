// The time source and one-shot wake-up a rate limiter works with. Both read the same monotonic
// clock, so a limiter that computes "budget is back in N ns" can arm the timer for exactly that.
// The real one is a timerfd (timer_fd.h); tests use a fake clock whose fd they make readable.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace hearth {

class MonotonicTimer {
 public:
  virtual ~MonotonicTimer() = default;

  // Now, in nanoseconds of the monotonic clock.
  virtual uint64_t NowNs() const = 0;
  // Makes fd() readable once `delay_ns` (at least 1) has passed, replacing any earlier arming.
  virtual Status ArmAfter(uint64_t delay_ns) = 0;
  virtual Status Disarm() = 0;
  // What the VMM event loop watches (EPOLLIN).
  virtual int fd() const = 0;
  // Clears readability after an expiry (reads the expiration count).
  virtual void Acknowledge() = 0;
};

}  // namespace hearth
