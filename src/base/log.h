// Logging: one line per message, "<time> [<instance>:<thread>:<level>] <message>", to stderr or a
// file. Thread-safe; the level and sink are set once at start-up (and by PUT /logger later).
#pragma once

#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hearth {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// Parses Firecracker's level names (Error, Warning, Info, Debug, also Off/Trace), any case.
Result<LogLevel> ParseLogLevel(std::string_view name);

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void SetLogInstanceId(std::string id);
// Sends logs to `path` (appending); stderr when never called.
Status SetLogPath(const std::string& path);
// Names the calling thread in log lines (and in /proc via pthread_setname_np).
void SetThreadName(const std::string& name);
// What each line carries besides time, instance and thread (PUT /logger's show_level and
// show_log_origin). The level is shown until told otherwise.
void SetLogDecorations(bool show_level, bool show_origin);
void LogLine(LogLevel level, std::string_view message, const char* file = nullptr, int line = 0);

}  // namespace hearth

#define HEARTH_LOG(level, expr)                         \
  do {                                                  \
    if (::hearth::LogEnabled(level)) {                  \
      std::ostringstream hearth_log_stream_;            \
      hearth_log_stream_ << expr;                       \
      ::hearth::LogLine(level, hearth_log_stream_.str(), __FILE__, __LINE__); \
    }                                                   \
  } while (0)
#define LOG_ERROR(expr) HEARTH_LOG(::hearth::LogLevel::kError, expr)
#define LOG_WARN(expr) HEARTH_LOG(::hearth::LogLevel::kWarning, expr)
#define LOG_INFO(expr) HEARTH_LOG(::hearth::LogLevel::kInfo, expr)
#define LOG_DEBUG(expr) HEARTH_LOG(::hearth::LogLevel::kDebug, expr)
