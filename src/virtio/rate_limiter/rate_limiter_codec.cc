#include "virtio/rate_limiter/rate_limiter_codec.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace hearth {
namespace {

void PutBucket(StateWriter& w, const std::optional<TokenBucketState>& b) {
  w.Bool(b.has_value());
  if (!b) return;
  w.U64(b->size);
  w.U64(b->one_time_burst);
  w.U64(b->refill_time_ms);
  w.U64(b->budget);
  w.U64(b->refill_elapsed_ns);
  w.U64(b->borrowed_ns);
}

Result<std::optional<TokenBucketState>> GetBucket(StateReader& r) {
  ASSIGN_OR_RETURN(bool has, r.Bool("rate limiter bucket present"));
  if (!has) return std::optional<TokenBucketState>();
  TokenBucketState b;
  ASSIGN_OR_RETURN(b.size, r.U64("rate limiter bucket size"));
  ASSIGN_OR_RETURN(b.one_time_burst, r.U64("rate limiter one_time_burst"));
  ASSIGN_OR_RETURN(b.refill_time_ms, r.U64("rate limiter refill_time"));
  ASSIGN_OR_RETURN(b.budget, r.U64("rate limiter budget"));
  ASSIGN_OR_RETURN(b.refill_elapsed_ns, r.U64("rate limiter refill progress"));
  ASSIGN_OR_RETURN(b.borrowed_ns, r.U64("rate limiter debt"));
  return std::optional<TokenBucketState>(b);
}

Status CheckBucket(const char* name, const std::optional<TokenBucketState>& s,
                   const std::optional<TokenBucketConfig>& c) {
  // A configured bucket of size 0 or refill 0 does not limit: the limiter has none.
  const bool limits = c && c->size != 0 && c->refill_time_ms != 0;
  if (s.has_value() != limits) {
    return Error(std::string(name) + " bucket: the state " + (s ? "has one" : "has none") +
                 ", the configuration " + (limits ? "has one" : "has none"));
  }
  if (!s) return Ok();
  if (s->size != c->size || s->refill_time_ms != c->refill_time_ms) {
    return Error(std::string(name) + " bucket: the state's size " + std::to_string(s->size) +
                 " / refill " + std::to_string(s->refill_time_ms) + " ms differ from the configured " +
                 std::to_string(c->size) + " / " + std::to_string(c->refill_time_ms) + " ms");
  }
  if (s->one_time_burst > c->one_time_burst) {
    return Error(std::string(name) + " bucket: one_time_burst left " + std::to_string(s->one_time_burst) +
                 " is more than the configured " + std::to_string(c->one_time_burst));
  }
  return Ok();
}

}  // namespace

void PutRateLimiterState(StateWriter& w, const RateLimiterState& state) {
  PutBucket(w, state.bandwidth);
  PutBucket(w, state.ops);
  w.U64(state.blocked_ns);
}

Result<RateLimiterState> GetRateLimiterState(StateReader& r, const char* what) {
  RateLimiterState s;
  auto bandwidth = GetBucket(r);
  if (!bandwidth.ok()) return bandwidth.error().Wrap(std::string(what) + " bandwidth");
  s.bandwidth = *bandwidth;
  auto ops = GetBucket(r);
  if (!ops.ok()) return ops.error().Wrap(std::string(what) + " ops");
  s.ops = *ops;
  auto blocked = r.U64("rate limiter blocked time");
  if (!blocked.ok()) return blocked.error().Wrap(what);
  s.blocked_ns = *blocked;
  return s;
}

Status CheckRateLimiterStateMatches(const RateLimiterState& state,
                                    const std::optional<RateLimiterConfig>& config) {
  RETURN_IF_ERROR(CheckBucket("bandwidth", state.bandwidth, config ? config->bandwidth : std::nullopt));
  RETURN_IF_ERROR(CheckBucket("ops", state.ops, config ? config->ops : std::nullopt));
  if (state.blocked_ns == 0) return Ok();
  if (!state.bandwidth && !state.ops) return Error("blocked without a bucket");
  // A short request waits at most for a whole bucket's refill; an oversized one for its debt.
  uint64_t limit = 0;
  for (const auto& b : {state.bandwidth, state.ops}) {
    if (!b) continue;
    const uint64_t refill_ns = b->refill_time_ms > UINT64_MAX / 1'000'000 ? UINT64_MAX
                                                                         : b->refill_time_ms * 1'000'000;
    limit = std::max({limit, refill_ns, b->borrowed_ns});
  }
  if (state.blocked_ns > limit) {
    return Error("blocked for " + std::to_string(state.blocked_ns) +
                 " ns, more than a bucket's refill or debt (" + std::to_string(limit) + " ns)");
  }
  return Ok();
}

}  // namespace hearth
