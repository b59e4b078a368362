#include "vmm/host_kind.h"

#include <sys/stat.h>

#include "boot/cmdline.h"

namespace hearth {

const char* HostKindName(HostKind kind) {
  return kind == HostKind::kPvm ? "pvm" : "hardware";
}

HostKind DetectHostKind() {
  struct stat st {};
  return ::stat("/sys/module/kvm_pvm", &st) == 0 ? HostKind::kPvm : HostKind::kHardware;
}

Result<HostKind> ResolveHostKind(std::string_view setting) {
  if (setting == "auto") return DetectHostKind();
  if (setting == "pvm") return HostKind::kPvm;
  if (setting == "hardware") return HostKind::kHardware;
  return Error("--host-kind: expected auto, pvm or hardware, got '" + std::string(setting) + "'");
}

Status AddHostKernelParams(HostKind kind, Cmdline& cmdline) {
  if (kind != HostKind::kPvm) return Ok();
  if (!cmdline.HasParam("clearcpuid") && !cmdline.HasParam("noxsave")) {
    RETURN_IF_ERROR(cmdline.Append(kPvmKernelParams));
  }
  if (!cmdline.HasParam("clocksource")) RETURN_IF_ERROR(cmdline.Append(kPvmClockParams));
  return Ok();
}

}  // namespace hearth
