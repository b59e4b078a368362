// Drives a `hearth --api-sock` process from tests: starts it in the background (stdout and
// stderr to files), speaks HTTP/1.1 to its UNIX socket with a hand-written client (so tests can
// also send broken, partial or oversized requests), and stops it.
#ifndef HEARTH_TESTS_SUPPORT_API_CLIENT_H_
#define HEARTH_TESTS_SUPPORT_API_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/temp_dir.h"

namespace hearth::testing {

struct HttpResponse {
  bool connected = false;  // False: no connection or no complete response.
  int status = 0;
  std::string body;
  std::string raw;  // Everything received.
  std::string Describe() const;
};

// Connects to `socket_path`, writes `request` as is, and reads one response (up to
// Content-Length, or until the peer closes). Gives up after `timeout`.
HttpResponse RawHttp(const std::string& socket_path, std::string_view request,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A well-formed request.
HttpResponse Http(const std::string& socket_path, std::string_view method, std::string_view path,
                  std::string_view body = {}, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A connected UNIX stream socket to `socket_path`, or -1.
int ConnectUnix(const std::string& socket_path);

class HearthApiProcess {
 public:
  // Starts HearthBinary() with --api-sock <dir>/api.sock plus `extra_args`, and waits until the
  // socket answers (or the process ended).
  explicit HearthApiProcess(const TempDir& dir, const std::vector<std::string>& extra_args = {},
                            const std::string& socket_name = "api.sock");
  ~HearthApiProcess();
  HearthApiProcess(const HearthApiProcess&) = delete;
  HearthApiProcess& operator=(const HearthApiProcess&) = delete;

  bool ready() const { return ready_; }
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  HttpResponse Call(std::string_view method, std::string_view path, std::string_view body = {}) const {
    return Http(socket_, method, path, body);
  }
  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stdout contains `text`; false on timeout or if the process ended first.
  bool WaitForOutput(std::string_view text, std::chrono::milliseconds timeout) const;
  bool Running();
  // Waits for the process to end; its exit code, or 128+signal, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap, if still running.
  void Kill();

 private:
  std::string socket_;
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool ready_ = false;
  std::optional<int> status_;
};

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_SUPPORT_API_CLIENT_H_
