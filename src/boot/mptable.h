// The Intel MultiProcessor Specification (1.4) table: how a guest without ACPI learns its
// vCPUs, the I/O APIC and the ISA interrupt routing. Written into the EBDA.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace hearth {

constexpr uint32_t kMaxVcpus = 32;

Status WriteMpTable(GuestMemory& memory, uint32_t vcpu_count);

}  // namespace hearth
