#include "base/event_loop.h"

#include <sys/epoll.h>

#include <string>

namespace hearth {

Result<EventLoop> EventLoop::Create() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return ErrnoError("epoll_create1");
  return EventLoop(Fd(fd));
}

Status EventLoop::Add(int fd, uint32_t events, Handler handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  int op = handlers_.contains(fd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0) {
    return ErrnoError("epoll_ctl add fd " + std::to_string(fd));
  }
  handlers_[fd] = std::make_shared<Handler>(std::move(handler));
  return Ok();
}

Status EventLoop::Remove(int fd) {
  if (handlers_.erase(fd) == 0) return Ok();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return ErrnoError("epoll_ctl del fd " + std::to_string(fd));
  }
  return Ok();
}

Status EventLoop::RunOnce(int timeout_ms) {
  epoll_event events[32];
  int n = ::epoll_wait(epoll_.get(), events, 32, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return Ok();
    return ErrnoError("epoll_wait");
  }
  for (int i = 0; i < n && !stopped_; ++i) {
    auto it = handlers_.find(events[i].data.fd);
    if (it == handlers_.end()) continue;  // Removed by an earlier handler in this batch.
    std::shared_ptr<Handler> handler = it->second;
    (*handler)(events[i].events);
  }
  return Ok();
}

Status EventLoop::Run() {
  while (!stopped_) RETURN_IF_ERROR(RunOnce(-1));
  return Ok();
}

}  // namespace hearth
