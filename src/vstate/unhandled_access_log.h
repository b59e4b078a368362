// Logs a guest's accesses to ports or MMIO that no device claims: once per port (or MMIO page),
// up to a cap, so a guest hammering an absent device cannot flood the log.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace hearth {

class UnhandledAccessLog {
 public:
  static constexpr size_t kMaxDistinct = 64;
  void Note(bool mmio, uint64_t addr, bool is_write);

 private:
  std::mutex mu_;
  std::unordered_set<uint64_t> seen_;
  bool capped_ = false;
};

}  // namespace hearth
