#include "virtio/rate_limiter/rate_limiter.h"

#include <algorithm>
#include <limits>

#include "base/log.h"
#include "virtio/rate_limiter/timer_fd.h"

namespace hearth {

Result<RateLimiter> RateLimiter::Create(const std::optional<RateLimiterConfig>& config) {
  auto timer = TimerFd::Create();
  if (!timer.ok()) return timer.error().Wrap("rate limiter");
  return Create(config, std::move(timer).value());
}

RateLimiter RateLimiter::Create(const std::optional<RateLimiterConfig>& config,
                                std::unique_ptr<MonotonicTimer> timer) {
  RateLimiter limiter(std::move(timer));
  if (config) {
    const uint64_t now = limiter.timer_->NowNs();
    if (config->bandwidth) limiter.bandwidth_ = TokenBucket::Create(*config->bandwidth, now);
    if (config->ops) limiter.ops_ = TokenBucket::Create(*config->ops, now);
  }
  return limiter;
}

bool RateLimiter::Consume(uint64_t bytes, uint64_t ops) {
  if (blocked_) return false;
  if (!bandwidth_ && !ops_) return true;
  const uint64_t now = timer_->NowNs();
  // Both buckets are checked before either is touched, so a request one bucket refuses costs
  // nothing from the other.
  uint64_t wait = 0;
  auto check = [&](std::optional<TokenBucket>& bucket, uint64_t tokens) {
    if (!bucket || tokens == 0) return;
    bucket->Refill(now);
    if (bucket->Check(tokens) == TokenBucket::Verdict::kShort) {
      wait = std::max(wait, bucket->WaitFor(tokens, now));
    }
  };
  check(bandwidth_, bytes);
  check(ops_, ops);
  if (wait > 0 && BlockFor(wait, now)) return false;
  uint64_t debt = 0;
  if (bandwidth_ && bytes > 0) debt = std::max(debt, bandwidth_->Take(bytes, now));
  if (ops_ && ops > 0) debt = std::max(debt, ops_->Take(ops, now));
  if (debt > 0) (void)BlockFor(debt, now);
  return true;
}

bool RateLimiter::BlockFor(uint64_t delay_ns, uint64_t now_ns) {
  delay_ns = std::max(delay_ns, kMinWaitNs);
  if (auto s = timer_->ArmAfter(delay_ns); !s.ok()) {
    LOG_ERROR("rate limiter: " << s.error().message() << "; not throttling");
    return false;
  }
  blocked_ = true;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  blocked_until_ns_ = now_ns > max - delay_ns ? max : now_ns + delay_ns;
  return true;
}

bool RateLimiter::OnTimer() {
  timer_->Acknowledge();
  if (!blocked_) return false;
  blocked_ = false;
  blocked_until_ns_ = 0;
  return true;
}

void RateLimiter::Update(const std::optional<RateLimiterConfig>& update) {
  if (!update) return;
  const uint64_t now = timer_->NowNs();
  if (update->bandwidth) bandwidth_ = TokenBucket::Create(*update->bandwidth, now);
  if (update->ops) ops_ = TokenBucket::Create(*update->ops, now);
  if (blocked_ && (update->bandwidth || update->ops)) {
    if (auto s = timer_->ArmAfter(1); s.ok()) {
      blocked_until_ns_ = now;
    } else {
      LOG_ERROR("rate limiter: " << s.error().message() << "; the old limit stays in force");
    }
  }
}

RateLimiterConfig RateLimiter::config() const {
  RateLimiterConfig c;
  if (bandwidth_) c.bandwidth = bandwidth_->config();
  if (ops_) c.ops = ops_->config();
  return c;
}

RateLimiterState RateLimiter::Save() const {
  const uint64_t now = timer_->NowNs();
  RateLimiterState s;
  if (bandwidth_) s.bandwidth = bandwidth_->Save(now);
  if (ops_) s.ops = ops_->Save(now);
  if (blocked_) s.blocked_ns = blocked_until_ns_ > now ? blocked_until_ns_ - now : 1;
  return s;
}

Status RateLimiter::Restore(const RateLimiterState& state) {
  const uint64_t now = timer_->NowNs();
  std::optional<TokenBucket> bandwidth, ops;
  if (state.bandwidth) {
    auto b = TokenBucket::Restore(*state.bandwidth, now);
    if (!b.ok()) return b.error().Wrap("rate limiter bandwidth");
    bandwidth = *b;
  }
  if (state.ops) {
    auto o = TokenBucket::Restore(*state.ops, now);
    if (!o.ok()) return o.error().Wrap("rate limiter ops");
    ops = *o;
  }
  if (state.blocked_ns > 0) {
    if (auto s = timer_->ArmAfter(state.blocked_ns); !s.ok()) return s.error().Wrap("rate limiter");
  } else {
    RETURN_IF_ERROR(timer_->Disarm());
  }
  bandwidth_ = bandwidth;
  ops_ = ops;
  blocked_ = state.blocked_ns > 0;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  blocked_until_ns_ = blocked_ ? (now > max - state.blocked_ns ? max : now + state.blocked_ns) : 0;
  return Ok();
}

}  // namespace hearth
