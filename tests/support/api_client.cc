#include "tests/support/api_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/process.h"

namespace hearth::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Parses status and Content-Length; true once `raw` holds a complete response.
bool ParseResponse(const std::string& raw, HttpResponse& out) {
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 && raw.compare(0, 9, "HTTP/1.0 ") != 0) return false;
  out.status = std::atoi(raw.c_str() + 9);
  size_t length = 0;
  std::string headers = raw.substr(0, end);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (size_t p = headers.find("\r\ncontent-length:"); p != std::string::npos) {
    length = std::strtoul(headers.c_str() + p + 17, nullptr, 10);
  }
  if (raw.size() < end + 4 + length) return false;
  out.body = raw.substr(end + 4, length);
  return true;
}

}  // namespace

std::string HttpResponse::Describe() const {
  return "connected=" + std::to_string(connected) + " status=" + std::to_string(status) + "\n" + raw;
}

int ConnectUnix(const std::string& socket_path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

HttpResponse RawHttp(const std::string& socket_path, std::string_view request, std::chrono::milliseconds timeout) {
  HttpResponse response;
  int fd = ConnectUnix(socket_path);
  if (fd < 0) return response;
  const auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    response.raw.append(buf, static_cast<size_t>(n));
    if (ParseResponse(response.raw, response)) {
      response.connected = true;
      break;
    }
  }
  ::close(fd);
  return response;
}

HttpResponse Http(const std::string& socket_path, std::string_view method, std::string_view path,
                  std::string_view body, std::chrono::milliseconds timeout) {
  std::string request = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!body.empty() || method == "PUT" || method == "PATCH") {
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n";
  request += body;
  return RawHttp(socket_path, request, timeout);
}

HearthApiProcess::HearthApiProcess(const TempDir& dir, const std::vector<std::string>& extra_args,
                                   const std::string& socket_name)
    : socket_(dir.Path(socket_name)), out_path_(dir.Path(socket_name + ".out")), err_path_(dir.Path(socket_name + ".err")) {
  std::vector<std::string> argv = {HearthBinary(), "--api-sock", socket_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    int fd = ConnectUnix(socket_);
    if (fd >= 0) {
      ::close(fd);
      ready_ = true;
      return;
    }
    if (!Running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

HearthApiProcess::~HearthApiProcess() { Kill(); }

std::string HearthApiProcess::Stdout() const { return ReadFile(out_path_); }
std::string HearthApiProcess::Stderr() const { return ReadFile(err_path_); }

bool HearthApiProcess::WaitForOutput(std::string_view text, std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Stdout().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Stdout().find(text) != std::string::npos;
}

bool HearthApiProcess::Running() {
  if (status_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

std::optional<int> HearthApiProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

void HearthApiProcess::Kill() {
  if (Running()) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

}  // namespace hearth::testing
