// The whole micro-VM as a plain struct: what the snapshot state file's payload holds, with its
// binary encoding (snapshot/state_codec.h). Decode re-checks the shape of everything (counts,
// sizes, the memory layout against the machine config); each component's Restore re-checks
// its own invariants when the VM is rebuilt.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/vm_resources.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "memory/guest_memory.h"
#include "virtio/mmio_transport.h"
#include "vstate/vcpu_state.h"
#include "vstate/vm_state.h"

namespace hearth {

struct VirtioDeviceSnapshot {
  std::string id;          // drive_id / iface_id.
  uint32_t device_type = 0;
  uint64_t mmio_addr = 0;
  uint32_t irq = 0;
  MmioTransportState transport;
  std::vector<uint8_t> device_state;  // VirtioDevice::SaveState().
};

struct MicroVmState {
  // The machine configuration and what rebuilds the devices (paths, taps, MACs).
  MachineConfig machine;
  std::string kernel_image_path;  // For --describe-snapshot only: restore loads no kernel.
  std::string cmdline;
  std::vector<DriveConfig> drives;
  std::vector<NetworkInterfaceConfig> network_interfaces;
  // Guest RAM as laid out in the memory file (regions back to back in this order).
  std::vector<GuestRegionSpec> memory_regions;
  VmState vm;
  std::vector<VcpuState> vcpus;
  SerialState serial;
  I8042State i8042;
  std::vector<VirtioDeviceSnapshot> virtio;
};

std::vector<uint8_t> EncodeMicroVmState(const MicroVmState& state);
Result<MicroVmState> DecodeMicroVmState(std::span<const uint8_t> payload);
// A human-readable summary (for --describe-snapshot).
std::string DescribeMicroVmState(const MicroVmState& state);

}  // namespace hearth
