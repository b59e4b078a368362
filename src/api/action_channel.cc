#include "api/action_channel.h"

namespace hearth {

Result<std::unique_ptr<ActionChannel>> ActionChannel::Create() {
  ASSIGN_OR_RETURN(EventFd event, EventFd::Create());
  return std::unique_ptr<ActionChannel>(new ActionChannel(std::move(event)));
}

ApiResponse ActionChannel::Call(ApiAction action) {
  std::future<ApiResponse> reply;
  {
    std::lock_guard lock(mu_);
    if (closed_) return ApiResponse::Fault(close_reason_);
    queue_.push_back(Pending{std::move(action), {}});
    reply = queue_.back().reply.get_future();
  }
  if (auto s = event_.Signal(); !s.ok()) {
    return ApiResponse::Fault("cannot reach the VMM thread: " + s.error().message());
  }
  return reply.get();
}

void ActionChannel::Serve(const Handler& handler) {
  (void)event_.Consume();
  for (;;) {
    Pending next;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    next.reply.set_value(handler(next.action));
  }
}

void ActionChannel::Close(std::string reason) {
  std::lock_guard lock(mu_);
  closed_ = true;
  close_reason_ = std::move(reason);
  for (auto& pending : queue_) pending.reply.set_value(ApiResponse::Fault(close_reason_));
  queue_.clear();
}

}  // namespace hearth
