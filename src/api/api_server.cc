#include "api/api_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <httplib.h>

#include "api/request_parser.h"
#include "base/clock.h"
#include "base/fd.h"
#include "base/log.h"

namespace hearth {
namespace {

// Runs each connection on the accepting thread itself: the API is one thread.
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

// httplib's Server has no AF_UNIX listener: bind the socket here and hand it over.
class UnixSocketHttpServer : public httplib::Server {
 public:
  bool ListenOn(Fd listening) {
    svr_sock_ = listening.Release();
    return listen_after_bind();
  }
};

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return Error("--api-sock: empty path");
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error("--api-sock: '" + path + "' is longer than a UNIX socket path can be (" +
                 std::to_string(sizeof(addr.sun_path) - 1) + " bytes)");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  return addr;
}

// A socket file nobody answers on was left by a dead process: remove it. One that answers is
// another VMM's: refuse.
Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return Error("API socket " + path + ": " + std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return Error("API socket " + path + ": the path exists and is not a socket");
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return Error(std::string("API socket: socket: ") + std::strerror(errno));
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return Error("API socket " + path + ": another process is serving on it");
  }
  if (errno != ECONNREFUSED) return Error("API socket " + path + ": connect: " + std::strerror(errno));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Error("API socket " + path + ": cannot remove the stale socket: " + std::strerror(errno));
  }
  LOG_INFO("replaced the stale API socket " << path);
  return Ok();
}

}  // namespace

class ApiServer::Impl {
 public:
  Options options;
  Fd listening;
  UnixSocketHttpServer http;
  std::thread thread;
  std::atomic<bool> thread_done{false};
  bool stopped = false;

  void Serve(const httplib::Request& req, httplib::Response& res) {
    const uint64_t start = MonotonicMicros();
    ApiResponse reply;
    std::string name = "invalid_request";
    bool is_load = false;
    // httplib does not read a GET's body: its headers still tell that one was sent.
    const bool get_with_body = req.method == "GET" && req.body.empty() &&
                               (req.has_header("Transfer-Encoding") ||
                                (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0"));
    auto action = get_with_body ? Result<ApiAction>(Error("GET request cannot have a body."))
                                : ParseApiRequest(req.method, req.path, req.body);
    if (!action.ok()) {
      reply = ApiResponse::Fault(action.error().message());
    } else {
      name = ActionName(*action);
      is_load = std::holds_alternative<LoadSnapshot>(*action);
      reply = options.channel->Call(std::move(action).value());
    }
    if (reply.status >= 400) {
      LOG_WARN("API " << req.method << " " << req.path << ": " << reply.status << " " << reply.body);
    } else if (is_load) {
      // The restore latency as the VMM sees it: request received (parsed) -> restored and, with
      // resume_vm, the vCPUs started; what benchmarks/snapshot reads.
      LOG_INFO("API " << req.method << " " << req.path << ": " << reply.status << ", "
                      << (MonotonicMicros() - start) << " us after the request was received");
    } else {
      LOG_DEBUG("API " << req.method << " " << req.path << ": " << reply.status);
    }
    res.status = reply.status;
    if (!reply.body.empty()) res.set_content(reply.body, "application/json");
    if (options.metrics) options.metrics->Record(name, MonotonicMicros() - start, reply.status >= 400);
  }

  // Errors httplib answers itself (a body over the limit, a request it cannot parse, a method
  // it does not know) get Firecracker's shape too.
  httplib::Server::HandlerResponse OnError(const httplib::Request& req, httplib::Response& res) {
    // Our own 400s already carry their fault message.
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    if (res.status == 413) {
      message = "Request payload is larger than the limit of " + std::to_string(kMaxApiBodyBytes) +
                " bytes allowed by server.";
    } else if (res.status == 404 || res.status == 405) {
      message = "Invalid request method and/or path: " + req.method + " " + req.path;
    } else {
      message = req.method.empty() ? "Malformed HTTP request"
                                   : "Invalid request method and/or path: " + req.method + " " + req.path;
    }
    res.status = 400;
    res.set_content(ApiResponse::Fault(message).body, "application/json");
    if (options.metrics) options.metrics->Record("invalid_request", 0, true);
    return httplib::Server::HandlerResponse::Handled;
  }
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() { Stop(); }

Result<std::unique_ptr<ApiServer>> ApiServer::Create(Options options) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(options.socket_path));
  RETURN_IF_ERROR(RemoveStaleSocket(options.socket_path, addr));
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Error(std::string("API socket: socket: ") + std::strerror(errno));
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Error("API socket " + options.socket_path + ": bind: " + std::strerror(errno));
  }
  if (::listen(sock.get(), 64) != 0) {
    ::unlink(options.socket_path.c_str());
    return Error("API socket " + options.socket_path + ": listen: " + std::strerror(errno));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->listening = std::move(sock);
  Impl* raw = impl.get();
  auto& http = impl->http;
  http.new_task_queue = [] { return new InlineTaskQueue(); };
  http.set_payload_max_length(kMaxApiBodyBytes);
  http.set_keep_alive_max_count(1);
  http.set_keep_alive_timeout(1);
  http.set_read_timeout(1, 0);
  http.set_write_timeout(1, 0);
  auto handler = [raw](const httplib::Request& req, httplib::Response& res) { raw->Serve(req, res); };
  http.Get(".*", handler);
  http.Put(".*", handler);
  http.Patch(".*", handler);
  http.Post(".*", handler);
  http.Delete(".*", handler);
  http.Options(".*", handler);
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [raw](const httplib::Request& req, httplib::Response& res) { return raw->OnError(req, res); }));
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

void ApiServer::Start() {
  Impl* impl = impl_.get();
  impl->thread = std::thread([impl] {
    SetThreadName("fc_api");
    if (impl->options.on_thread_start) impl->options.on_thread_start();
    if (!impl->http.ListenOn(std::move(impl->listening)) && !impl->stopped) {
      LOG_ERROR("API server on " << impl->options.socket_path << " stopped unexpectedly");
    }
    impl->thread_done = true;
  });
}

void ApiServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  // stop() only works on a running server: wait for the thread to get there (or to end).
  while (impl_->thread.joinable() && !impl_->http.is_running() && !impl_->thread_done) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  ::unlink(impl_->options.socket_path.c_str());
}

}  // namespace hearth
