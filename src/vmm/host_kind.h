// What kind of KVM host this is. On kvm_pvm (nested virtualization without VMX, where guest
// kernel code is interpreted by KVM's emulator) some instructions cannot run at all, so Hearth
// keeps the guest kernel away from them: CPUID bits where KVM lets us, command-line words where
// it does not, and an int3 handler in the vCPU loop.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace hearth {

enum class HostKind { kHardware, kPvm };

const char* HostKindName(HostKind kind);
// "auto" detects; "pvm" and "hardware" override.
Result<HostKind> ResolveHostKind(std::string_view setting);
HostKind DetectHostKind();

// Kernel parameters Linux needs on a PVM host: no XSAVE family, and no POPCNT, SMAP (stac/clac)
// or CMPXCHG16B, by their x86 feature numbers (stable: CPUID leaf words 4 and 9).
inline constexpr std::string_view kPvmKernelParams = "noxsave clearcpuid=141,151,308";

}  // namespace hearth
