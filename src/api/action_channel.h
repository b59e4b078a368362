// The one way the API thread reaches the VMM thread: it queues a typed action, signals an
// eventfd that the VMM thread's event loop watches, and blocks until the reply comes back. The
// VMM thread owns all VM state; the API thread never touches it.
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>

#include "api/api_action.h"
#include "base/fd.h"
#include "base/result.h"

namespace hearth {

class ActionChannel {
 public:
  using Handler = std::function<ApiResponse(const ApiAction&)>;

  static Result<std::unique_ptr<ActionChannel>> Create();

  // API thread: hands `action` to the VMM thread and waits for its reply. After Close(), answers
  // at once with a fault naming the reason.
  ApiResponse Call(ApiAction action);

  // VMM thread: readable while actions wait.
  int fd() const { return event_.get(); }
  // VMM thread: answers every queued action with `handler`.
  void Serve(const Handler& handler);
  // VMM thread: no more actions will be served (the VMM is stopping); waiting and later
  // callers get `reason`.
  void Close(std::string reason);

 private:
  explicit ActionChannel(EventFd event) : event_(std::move(event)) {}
  struct Pending {
    ApiAction action;
    std::promise<ApiResponse> reply;
  };
  EventFd event_;
  std::mutex mu_;
  std::deque<Pending> queue_;
  bool closed_ = false;
  std::string close_reason_;
};

}  // namespace hearth
