// A single-threaded epoll loop. The VMM thread runs one; everything it serves (eventfds, tap
// and socket fds, stdin) is registered here with a handler that runs on that thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "base/fd.h"
#include "base/result.h"

namespace hearth {

class EventLoop {
 public:
  // Called with the epoll event mask (EPOLLIN, EPOLLHUP, ...).
  using Handler = std::function<void(uint32_t events)>;

  static Result<EventLoop> Create();

  // Watches `fd` (not owned) for `events`; replaces any handler it had.
  Status Add(int fd, uint32_t events, Handler handler);
  Status Remove(int fd);
  bool Watching(int fd) const { return handlers_.contains(fd); }

  // Waits up to `timeout_ms` (-1 = forever) and dispatches ready handlers once.
  Status RunOnce(int timeout_ms);
  // Dispatches until Stop() is called (from a handler on this thread).
  Status Run();
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

 private:
  explicit EventLoop(Fd epoll) : epoll_(std::move(epoll)) {}
  Fd epoll_;
  // Handlers are shared so one can safely remove itself (or others) while running.
  std::unordered_map<int, std::shared_ptr<Handler>> handlers_;
  bool stopped_ = false;
};

}  // namespace hearth
