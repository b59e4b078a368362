// A rate limiter's runtime state (RateLimiterState: each bucket's size, remaining budget and
// one-time burst, refill progress or debt, time left blocked) in the snapshot encoding
// (snapshot/state_codec.h), for the devices' SaveState/RestoreState.
#pragma once

#include <optional>

#include "base/result.h"
#include "config/vm_resources.h"
#include "snapshot/state_codec.h"
#include "virtio/rate_limiter/rate_limiter.h"

namespace hearth {

void PutRateLimiterState(StateWriter& w, const RateLimiterState& state);
// Reads what PutRateLimiterState wrote; `what` names the limiter in errors. Checks the
// encoding only: RateLimiter::Restore checks the values (budget <= size ...).
Result<RateLimiterState> GetRateLimiterState(StateReader& r, const char* what);

// A saved state belongs to a limiter configured as `config` (which the device was rebuilt
// from): the same buckets, with the same size and refill time, and no more one-time burst left
// than configured. Blocked time is at most what the refill of a whole bucket takes or, after an
// oversized request, the debt.
Status CheckRateLimiterStateMatches(const RateLimiterState& state,
                                    const std::optional<RateLimiterConfig>& config);

}  // namespace hearth
