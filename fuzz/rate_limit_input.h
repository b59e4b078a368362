// Rate limiter settings for the device targets, as PUT /drives and /network-interfaces accept
// them (any 64-bit values), and the fake clock they run on.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <optional>

#include "config/vm_resources.h"
#include "tests/virtio_support/fake_timer.h"

namespace hearth::fuzz {

inline std::optional<TokenBucketConfig> ConsumeBucket(FuzzedDataProvider& in) {
  if (!in.ConsumeBool()) return std::nullopt;
  TokenBucketConfig b;
  const bool wide = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  b.size = wide ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 1 << 16);
  b.one_time_burst = wide ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 4096);
  b.refill_time_ms = wide ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 1000);
  return b;
}

inline std::optional<RateLimiterConfig> ConsumeRateLimiter(FuzzedDataProvider& in) {
  if (in.ConsumeIntegralInRange<int>(0, 2) != 0) return std::nullopt;
  return RateLimiterConfig{ConsumeBucket(in), ConsumeBucket(in)};
}

// Time passing: up to a few seconds, or up to days (the clock must not wrap in one input).
inline uint64_t ConsumeDelayNs(FuzzedDataProvider& in) {
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 3'000'000'000)
                          : in.ConsumeIntegral<uint64_t>() >> in.ConsumeIntegralInRange<int>(16, 63);
}

}  // namespace hearth::fuzz
