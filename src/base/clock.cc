#include "base/clock.h"

#include <atomic>
#include <ctime>

namespace hearth {
namespace {
std::atomic<uint64_t> g_start_us{0};
std::atomic<uint64_t> g_start_cpu_us{0};

uint64_t Micros(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}
}  // namespace

uint64_t MonotonicMicros() { return Micros(CLOCK_MONOTONIC); }
uint64_t ProcessCpuMicros() {
  // The process CPU clock survives exec, so a jailer's own time is included; a launcher's
  // start value is taken off.
  uint64_t cpu = Micros(CLOCK_PROCESS_CPUTIME_ID);
  uint64_t start = g_start_cpu_us.load();
  return cpu > start ? cpu - start : 0;
}
void RecordProcessStart() { g_start_us.store(MonotonicMicros()); }
uint64_t ProcessStartMicros() { return g_start_us.load(); }
void SetProcessStart(uint64_t monotonic_us, uint64_t cpu_us) {
  g_start_us.store(monotonic_us);
  g_start_cpu_us.store(cpu_us);
}

}  // namespace hearth
