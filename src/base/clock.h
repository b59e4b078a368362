// Monotonic time, and the moment the process started (for the boot timer).
#pragma once

#include <cstdint>

namespace hearth {

uint64_t MonotonicMicros();
uint64_t ProcessCpuMicros();
// Recorded once, as early in main() as possible.
void RecordProcessStart();
uint64_t ProcessStartMicros();

}  // namespace hearth
