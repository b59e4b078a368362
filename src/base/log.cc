#include "base/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <mutex>

#include "base/fd.h"

namespace hearth {
namespace {

struct LogSink {
  std::mutex mu;
  std::atomic<int> level{static_cast<int>(LogLevel::kWarning)};
  std::string instance = "anonymous-instance";
  bool show_level = true;
  bool show_origin = false;
  Fd file;  // Invalid: stderr.
};

LogSink& Sink() {
  static LogSink* sink = new LogSink();  // Never destroyed: threads may log during exit.
  return *sink;
}

thread_local std::string t_thread_name = "main";

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarning: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
  }
  return "?";
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "error" || lower == "off") return LogLevel::kError;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "debug" || lower == "trace") return LogLevel::kDebug;
  return Error("unknown log level '" + std::string(name) +
               "' (expected Error, Warning, Info or Debug)");
}

void SetLogLevel(LogLevel level) { Sink().level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) <= Sink().level.load(std::memory_order_relaxed);
}

void SetLogInstanceId(std::string id) {
  std::lock_guard lock(Sink().mu);
  Sink().instance = std::move(id);
}

Status SetLogPath(const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, Fd::Open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0600));
  std::lock_guard lock(Sink().mu);
  Sink().file = std::move(fd);
  return Ok();
}

void SetThreadName(const std::string& name) {
  t_thread_name = name;
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

void SetLogDecorations(bool show_level, bool show_origin) {
  std::lock_guard lock(Sink().mu);
  Sink().show_level = show_level;
  Sink().show_origin = show_origin;
}

void LogLine(LogLevel level, std::string_view message, const char* file, int line_no) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[40];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  auto& sink = Sink();
  std::lock_guard lock(sink.mu);
  std::string line = std::string(stamp) + "." + std::to_string(ts.tv_nsec / 1000000 + 1000).substr(1) +
                     " [" + sink.instance + ":" + t_thread_name;
  if (sink.show_level) line += std::string(":") + LevelName(level);
  if (sink.show_origin && file != nullptr) {
    std::string_view f(file);
    if (auto src = f.rfind("src/"); src != std::string_view::npos) f = f.substr(src + 4);
    line += ":" + std::string(f) + ":" + std::to_string(line_no);
  }
  line += "] ";
  line.append(message);
  line.push_back('\n');
  int fd = sink.file.valid() ? sink.file.get() : STDERR_FILENO;
  (void)WriteAll(fd, line.data(), line.size(), "log");
}

}  // namespace hearth
