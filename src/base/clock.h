// Monotonic time, and the moment the process started (for the boot timer).
#pragma once

#include <cstdint>

namespace hearth {

uint64_t MonotonicMicros();
uint64_t ProcessCpuMicros();
// Recorded once, as early in main() as possible.
void RecordProcessStart();
uint64_t ProcessStartMicros();
// A launcher (hearth-jailer) passes when it started (--start-time-us, CLOCK_MONOTONIC) and the
// CPU time already used then (--start-time-cpu-us): the boot timer counts from there.
void SetProcessStart(uint64_t monotonic_us, uint64_t cpu_us);

}  // namespace hearth
