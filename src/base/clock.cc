#include "base/clock.h"

#include <atomic>
#include <ctime>

namespace hearth {
namespace {
std::atomic<uint64_t> g_start_us{0};

uint64_t Micros(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}
}  // namespace

uint64_t MonotonicMicros() { return Micros(CLOCK_MONOTONIC); }
uint64_t ProcessCpuMicros() { return Micros(CLOCK_PROCESS_CPUTIME_ID); }
void RecordProcessStart() { g_start_us.store(MonotonicMicros()); }
uint64_t ProcessStartMicros() { return g_start_us.load(); }

}  // namespace hearth
