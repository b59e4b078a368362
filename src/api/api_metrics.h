// API request counts and latencies, per action, for the metrics file. Written by the API
// thread, read by the VMM thread when it flushes.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace hearth {

struct ApiRequestStats {
  uint64_t count = 0;
  uint64_t faults = 0;
  uint64_t total_us = 0;
  uint64_t max_us = 0;
};

class ApiMetrics {
 public:
  void Record(const std::string& name, uint64_t elapsed_us, bool fault) {
    std::lock_guard lock(mu_);
    ApiRequestStats& s = stats_[name];
    ++s.count;
    if (fault) ++s.faults;
    s.total_us += elapsed_us;
    if (elapsed_us > s.max_us) s.max_us = elapsed_us;
  }
  std::map<std::string, ApiRequestStats> Snapshot() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, ApiRequestStats> stats_;
};

}  // namespace hearth
