// What kind of KVM host this is. On kvm_pvm (nested virtualization without VMX, where guest
// kernel code is interpreted by KVM's emulator) some instructions cannot run at all, so Hearth
// keeps the guest kernel away from them: CPUID bits where KVM lets us, command-line words where
// it does not, and an int3 handler in the vCPU loop. KVM there cannot offset the guest's TSC
// either, so the guest is also told to keep time with kvm-clock (see AddHostKernelParams).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace hearth {

class Cmdline;

enum class HostKind { kHardware, kPvm };

const char* HostKindName(HostKind kind);
// "auto" detects; "pvm" and "hardware" override.
Result<HostKind> ResolveHostKind(std::string_view setting);
HostKind DetectHostKind();

// Kernel parameters Linux needs on a PVM host: no XSAVE family, and no POPCNT, SMAP (stac/clac)
// or CMPXCHG16B, by their x86 feature numbers (stable: CPUID leaf words 4 and 9).
inline constexpr std::string_view kPvmKernelParams = "noxsave clearcpuid=141,151,308";
// The guest's rdtsc runs natively on a PVM host and reads the host's TSC: KVM_SET_MSRS cannot
// give a restored guest its saved TSC, so a guest timing itself by the TSC (Linux's choice with
// one vCPU) jumps forward by the time the snapshot lay on disk (RCU stall warnings, a burst of
// expired timers, seconds of interpreted catch-up per clone). kvm-clock is what a restore sets
// (KVM_SET_CLOCK).
inline constexpr std::string_view kPvmClockParams = "clocksource=kvm-clock";

// Appends to `cmdline` the parameters Linux needs on a host of this kind (none on hardware
// virtualization), leaving out each group the user's boot_args already decide.
Status AddHostKernelParams(HostKind kind, Cmdline& cmdline);

}  // namespace hearth
