// HTTP/1.1 on a UNIX socket (cpp-httplib), served by one API thread. Each request is parsed
// into a typed action and handed to the VMM thread through the ActionChannel; the reply goes
// back as the response. Connections are served one at a time on that thread, so every wait on
// a client is bounded (read, write and idle timeouts of a second): a client that stalls or
// vanishes costs others at most that long and never blocks the VMM.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "api/action_channel.h"
#include "api/api_metrics.h"
#include "base/result.h"

namespace hearth {

class ApiServer {
 public:
  struct Options {
    std::string socket_path;
    ActionChannel* channel = nullptr;
    ApiMetrics* metrics = nullptr;
    // Runs first on the API thread (the seccomp filter goes here).
    std::function<void()> on_thread_start;
  };

  // Binds and listens on `socket_path`: a stale socket file left by a dead process is
  // replaced; one a live process answers on is an error, as is any other kind of file.
  static Result<std::unique_ptr<ApiServer>> Create(Options options);
  ~ApiServer();

  void Start();
  // Stops serving, joins the API thread and removes the socket file.
  void Stop();

 private:
  class Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth
