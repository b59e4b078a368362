// The metrics file of PUT /metrics (or the config file's "metrics"): one JSON object per
// flush, appended to a file or written into a FIFO, every 60 s and on FlushMetrics. Counters
// are cumulative since the VMM started; each object carries its own timestamp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/event_loop.h"
#include "base/fd.h"
#include "base/result.h"

namespace hearth {

class MetricsWriter {
 public:
  static constexpr uint64_t kPeriodSeconds = 60;

  // Opens `path` for appending (a FIFO without a reader yet is opened so that writes do not
  // block the VMM) and arms the periodic flush on `loop`. `collect` builds one JSON object.
  static Result<std::unique_ptr<MetricsWriter>> Create(const std::string& path, EventLoop& loop,
                                                       std::function<std::string()> collect);
  ~MetricsWriter();

  Status Flush();
  const std::string& path() const { return path_; }

 private:
  MetricsWriter() = default;
  std::string path_;
  Fd file_;
  Fd timer_;
  EventLoop* loop_ = nullptr;
  std::function<std::string()> collect_;
  uint64_t dropped_ = 0;
};

}  // namespace hearth
