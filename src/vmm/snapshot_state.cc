#include "vmm/snapshot_state.h"

#include <sstream>

#include "base/hex.h"
#include "snapshot/state_codec.h"

namespace hearth {
namespace {

constexpr uint64_t kMaxRegions = 8;
constexpr uint64_t kMaxDevices = 64;
constexpr uint64_t kMaxQueues = 64;
constexpr uint64_t kMaxCpuidEntries = 4096;
constexpr uint64_t kMaxMsrs = 16384;
constexpr uint64_t kMaxXsaveBytes = 1 << 20;
constexpr uint64_t kMaxDeviceStateBytes = 1 << 20;
constexpr uint64_t kPage = 4096;

// Section tags: a decoder that is off by a byte stops at the next tag with a clear message.
enum Tag : uint32_t {
  kTagMachine = 0x4d414348,  // "MACH"
  kTagMemory = 0x4d454d4f,   // "MEMO"
  kTagVm = 0x564d5354,       // "VMST"
  kTagVcpu = 0x56435055,     // "VCPU"
  kTagLegacy = 0x4c454744,   // "LEGD"
  kTagVirtio = 0x56495254,   // "VIRT"
  kTagEnd = 0x454e4421,      // "END!"
};

Status ExpectTag(StateReader& r, uint32_t tag, const char* what) {
  ASSIGN_OR_RETURN(uint32_t got, r.U32(what));
  if (got != tag) return Error(std::string(what) + ": section marker missing (corrupted state)");
  return Ok();
}

void PutOptString(StateWriter& w, const std::optional<std::string>& s) {
  w.Bool(s.has_value());
  if (s) w.String(*s);
}

Result<std::optional<std::string>> GetOptString(StateReader& r, const char* what) {
  ASSIGN_OR_RETURN(bool has, r.Bool(what));
  if (!has) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string s, r.String(what));
  return std::optional<std::string>(std::move(s));
}

void PutBucket(StateWriter& w, const std::optional<TokenBucketConfig>& b) {
  w.Bool(b.has_value());
  if (b) {
    w.U64(b->size);
    w.U64(b->one_time_burst);
    w.U64(b->refill_time_ms);
  }
}

Result<std::optional<TokenBucketConfig>> GetBucket(StateReader& r) {
  ASSIGN_OR_RETURN(bool has, r.Bool("token bucket"));
  if (!has) return std::optional<TokenBucketConfig>();
  TokenBucketConfig b;
  ASSIGN_OR_RETURN(b.size, r.U64("token bucket size"));
  ASSIGN_OR_RETURN(b.one_time_burst, r.U64("token bucket one_time_burst"));
  ASSIGN_OR_RETURN(b.refill_time_ms, r.U64("token bucket refill_time_ms"));
  return std::optional<TokenBucketConfig>(b);
}

void PutLimiter(StateWriter& w, const std::optional<RateLimiterConfig>& l) {
  w.Bool(l.has_value());
  if (l) {
    PutBucket(w, l->bandwidth);
    PutBucket(w, l->ops);
  }
}

Result<std::optional<RateLimiterConfig>> GetLimiter(StateReader& r) {
  ASSIGN_OR_RETURN(bool has, r.Bool("rate limiter"));
  if (!has) return std::optional<RateLimiterConfig>();
  RateLimiterConfig l;
  ASSIGN_OR_RETURN(l.bandwidth, GetBucket(r));
  ASSIGN_OR_RETURN(l.ops, GetBucket(r));
  return std::optional<RateLimiterConfig>(l);
}

void PutQueue(StateWriter& w, const QueueState& q) {
  w.U16(q.max_size);
  w.U16(q.size);
  w.Bool(q.ready);
  w.U64(q.desc_table);
  w.U64(q.avail_ring);
  w.U64(q.used_ring);
  w.U16(q.next_avail);
  w.U16(q.next_used);
  w.U16(q.signalled_used);
  w.Bool(q.signalled_used_valid);
  w.Bool(q.event_idx);
  w.Bool(q.indirect);
}

Result<QueueState> GetQueue(StateReader& r) {
  QueueState q;
  ASSIGN_OR_RETURN(q.max_size, r.U16("queue max_size"));
  ASSIGN_OR_RETURN(q.size, r.U16("queue size"));
  ASSIGN_OR_RETURN(q.ready, r.Bool("queue ready"));
  ASSIGN_OR_RETURN(q.desc_table, r.U64("queue desc_table"));
  ASSIGN_OR_RETURN(q.avail_ring, r.U64("queue avail_ring"));
  ASSIGN_OR_RETURN(q.used_ring, r.U64("queue used_ring"));
  ASSIGN_OR_RETURN(q.next_avail, r.U16("queue next_avail"));
  ASSIGN_OR_RETURN(q.next_used, r.U16("queue next_used"));
  ASSIGN_OR_RETURN(q.signalled_used, r.U16("queue signalled_used"));
  ASSIGN_OR_RETURN(q.signalled_used_valid, r.Bool("queue signalled_used_valid"));
  ASSIGN_OR_RETURN(q.event_idx, r.Bool("queue event_idx"));
  ASSIGN_OR_RETURN(q.indirect, r.Bool("queue indirect"));
  return q;
}

}  // namespace

std::vector<uint8_t> EncodeMicroVmState(const MicroVmState& s) {
  StateWriter w;
  w.U32(kTagMachine);
  w.U32(s.machine.vcpu_count);
  w.U64(s.machine.mem_size_mib);
  w.Bool(s.machine.smt);
  w.Bool(s.machine.track_dirty_pages);
  w.String(s.kernel_image_path);
  w.String(s.cmdline);
  w.U64(s.drives.size());
  for (const auto& d : s.drives) {
    w.String(d.drive_id);
    w.String(d.path_on_host);
    w.Bool(d.is_root_device);
    w.Bool(d.is_read_only);
    PutOptString(w, d.partuuid);
    w.U8(d.cache_type == CacheType::kWriteback ? 1 : 0);
    w.U8(d.io_engine == IoEngine::kAsync ? 1 : 0);
    PutLimiter(w, d.rate_limiter);
  }
  w.U64(s.network_interfaces.size());
  for (const auto& n : s.network_interfaces) {
    w.String(n.iface_id);
    w.String(n.host_dev_name);
    w.Bool(n.guest_mac.has_value());
    if (n.guest_mac) {
      for (uint8_t b : *n.guest_mac) w.U8(b);
    }
    w.Bool(n.mtu.has_value());
    if (n.mtu) w.U16(*n.mtu);
    PutLimiter(w, n.rx_rate_limiter);
    PutLimiter(w, n.tx_rate_limiter);
  }

  w.U32(kTagMemory);
  w.U64(s.memory_regions.size());
  for (const auto& r : s.memory_regions) {
    w.U64(r.guest_addr);
    w.U64(r.size);
  }

  w.U32(kTagVm);
  w.Blob(s.vm.pic_master);
  w.Blob(s.vm.pic_slave);
  w.Blob(s.vm.ioapic);
  w.Blob(s.vm.pit);
  w.Blob(s.vm.clock);

  w.U64(s.vcpus.size());
  for (const auto& v : s.vcpus) {
    w.U32(kTagVcpu);
    w.U32(v.id);
    w.U64(v.cpuid.size());
    for (const auto& e : v.cpuid) w.Blob(e);
    w.U64(v.msrs.size());
    for (const auto& [index, value] : v.msrs) {
      w.U32(index);
      w.U64(value);
    }
    w.Blob(v.regs);
    w.Blob(v.sregs);
    w.Blob(v.fpu);
    w.Bytes(v.xsave);
    w.Bool(v.has_xcrs);
    w.Blob(v.xcrs);
    w.Blob(v.debugregs);
    w.Blob(v.lapic);
    w.U32(v.mp_state);
    w.Blob(v.events);
  }

  w.U32(kTagLegacy);
  const SerialState& se = s.serial;
  for (uint8_t b : {se.ier, se.lcr, se.mcr, se.lsr, se.msr, se.scr, se.dll, se.dlm}) w.U8(b);
  w.Bool(se.fifo_enabled);
  w.Bool(se.thr_empty_pending);
  w.Bytes(se.rx_fifo);
  w.U8(s.i8042.status);
  w.U8(s.i8042.control);
  w.U8(s.i8042.output_port);
  w.U8(s.i8042.pending_command);
  w.Bytes(s.i8042.output);

  w.U32(kTagVirtio);
  w.U64(s.virtio.size());
  for (const auto& d : s.virtio) {
    w.String(d.id);
    w.U32(d.device_type);
    w.U64(d.mmio_addr);
    w.U32(d.irq);
    const MmioTransportState& t = d.transport;
    w.U32(t.status);
    w.U32(t.device_features_sel);
    w.U32(t.driver_features_sel);
    w.U64(t.acked_features);
    w.U32(t.queue_sel);
    w.U32(t.interrupt_status);
    w.U32(t.config_generation);
    w.U64(t.queues.size());
    for (const auto& q : t.queues) PutQueue(w, q);
    w.Bytes(d.device_state);
  }
  w.U32(kTagEnd);
  return w.Take();
}

Result<MicroVmState> DecodeMicroVmState(std::span<const uint8_t> payload) {
  StateReader r(payload);
  MicroVmState s;
  RETURN_IF_ERROR(ExpectTag(r, kTagMachine, "machine config"));
  ASSIGN_OR_RETURN(s.machine.vcpu_count, r.U32("vcpu_count"));
  ASSIGN_OR_RETURN(s.machine.mem_size_mib, r.U64("mem_size_mib"));
  ASSIGN_OR_RETURN(s.machine.smt, r.Bool("smt"));
  ASSIGN_OR_RETURN(s.machine.track_dirty_pages, r.Bool("track_dirty_pages"));
  if (s.machine.vcpu_count == 0 || s.machine.vcpu_count > MachineConfig::kMaxVcpus) {
    return Error("machine config: vcpu_count " + std::to_string(s.machine.vcpu_count) + " is out of range");
  }
  if (s.machine.mem_size_mib == 0 || s.machine.mem_size_mib > MachineConfig::kMaxMemMib) {
    return Error("machine config: mem_size_mib " + std::to_string(s.machine.mem_size_mib) + " is out of range");
  }
  ASSIGN_OR_RETURN(s.kernel_image_path, r.String("kernel_image_path"));
  ASSIGN_OR_RETURN(s.cmdline, r.String("cmdline", 1 << 16));
  ASSIGN_OR_RETURN(uint64_t ndrives, r.Count("drives", kMaxDevices));
  for (uint64_t i = 0; i < ndrives; ++i) {
    DriveConfig d;
    ASSIGN_OR_RETURN(d.drive_id, r.String("drive_id"));
    ASSIGN_OR_RETURN(d.path_on_host, r.String("path_on_host"));
    ASSIGN_OR_RETURN(d.is_root_device, r.Bool("is_root_device"));
    ASSIGN_OR_RETURN(d.is_read_only, r.Bool("is_read_only"));
    ASSIGN_OR_RETURN(d.partuuid, GetOptString(r, "partuuid"));
    ASSIGN_OR_RETURN(uint8_t cache, r.U8("cache_type"));
    ASSIGN_OR_RETURN(uint8_t engine, r.U8("io_engine"));
    if (cache > 1 || engine > 1) return Error("drive " + d.drive_id + ": invalid cache_type or io_engine");
    d.cache_type = cache ? CacheType::kWriteback : CacheType::kUnsafe;
    d.io_engine = engine ? IoEngine::kAsync : IoEngine::kSync;
    ASSIGN_OR_RETURN(d.rate_limiter, GetLimiter(r));
    RETURN_IF_ERROR(ValidateResourceId(d.drive_id, "snapshot drive_id"));
    s.drives.push_back(std::move(d));
  }
  ASSIGN_OR_RETURN(uint64_t nnets, r.Count("network interfaces", kMaxDevices));
  for (uint64_t i = 0; i < nnets; ++i) {
    NetworkInterfaceConfig n;
    ASSIGN_OR_RETURN(n.iface_id, r.String("iface_id"));
    ASSIGN_OR_RETURN(n.host_dev_name, r.String("host_dev_name"));
    ASSIGN_OR_RETURN(bool has_mac, r.Bool("guest_mac"));
    if (has_mac) {
      std::array<uint8_t, 6> mac{};
      for (auto& b : mac) {
        ASSIGN_OR_RETURN(b, r.U8("guest_mac"));
      }
      n.guest_mac = mac;
    }
    ASSIGN_OR_RETURN(bool has_mtu, r.Bool("mtu"));
    if (has_mtu) {
      ASSIGN_OR_RETURN(uint16_t mtu, r.U16("mtu"));
      n.mtu = mtu;
    }
    ASSIGN_OR_RETURN(n.rx_rate_limiter, GetLimiter(r));
    ASSIGN_OR_RETURN(n.tx_rate_limiter, GetLimiter(r));
    RETURN_IF_ERROR(ValidateResourceId(n.iface_id, "snapshot iface_id"));
    s.network_interfaces.push_back(std::move(n));
  }

  RETURN_IF_ERROR(ExpectTag(r, kTagMemory, "memory layout"));
  ASSIGN_OR_RETURN(uint64_t nregions, r.Count("memory regions", kMaxRegions, 16));
  if (nregions == 0) return Error("memory layout: no regions");
  uint64_t total = 0;
  uint64_t prev_end = 0;
  for (uint64_t i = 0; i < nregions; ++i) {
    GuestRegionSpec spec{};
    ASSIGN_OR_RETURN(spec.guest_addr, r.U64("region guest_addr"));
    ASSIGN_OR_RETURN(spec.size, r.U64("region size"));
    if (spec.size == 0 || spec.size % kPage || spec.guest_addr % kPage ||
        spec.guest_addr + spec.size < spec.guest_addr || (i > 0 && spec.guest_addr < prev_end)) {
      return Error("memory layout: region " + Hex(spec.guest_addr) + "+" + Hex(spec.size) +
                   " is empty, unaligned, overlapping or out of order");
    }
    prev_end = spec.guest_addr + spec.size;
    total += spec.size;
    s.memory_regions.push_back(spec);
  }
  if (total != s.machine.mem_size_mib << 20) {
    return Error("memory layout: regions total " + std::to_string(total) +
                 " bytes, the machine config says " + std::to_string(s.machine.mem_size_mib) + " MiB");
  }

  RETURN_IF_ERROR(ExpectTag(r, kTagVm, "VM state"));
  ASSIGN_OR_RETURN(s.vm.pic_master, r.Blob<kvm_irqchip>("PIC master"));
  ASSIGN_OR_RETURN(s.vm.pic_slave, r.Blob<kvm_irqchip>("PIC slave"));
  ASSIGN_OR_RETURN(s.vm.ioapic, r.Blob<kvm_irqchip>("IOAPIC"));
  ASSIGN_OR_RETURN(s.vm.pit, r.Blob<kvm_pit_state2>("PIT"));
  ASSIGN_OR_RETURN(s.vm.clock, r.Blob<kvm_clock_data>("kvm-clock"));

  ASSIGN_OR_RETURN(uint64_t nvcpus, r.Count("vCPUs", MachineConfig::kMaxVcpus));
  if (nvcpus != s.machine.vcpu_count) {
    return Error("the state holds " + std::to_string(nvcpus) + " vCPUs, the machine config says " +
                 std::to_string(s.machine.vcpu_count));
  }
  for (uint64_t i = 0; i < nvcpus; ++i) {
    VcpuState v;
    RETURN_IF_ERROR(ExpectTag(r, kTagVcpu, "vCPU state"));
    ASSIGN_OR_RETURN(v.id, r.U32("vCPU id"));
    if (v.id != i) return Error("vCPU state " + std::to_string(i) + " has id " + std::to_string(v.id));
    ASSIGN_OR_RETURN(uint64_t ncpuid, r.Count("CPUID entries", kMaxCpuidEntries, 8));
    for (uint64_t k = 0; k < ncpuid; ++k) {
      ASSIGN_OR_RETURN(auto e, r.Blob<kvm_cpuid_entry2>("CPUID entry"));
      v.cpuid.push_back(e);
    }
    ASSIGN_OR_RETURN(uint64_t nmsrs, r.Count("MSRs", kMaxMsrs, 12));
    for (uint64_t k = 0; k < nmsrs; ++k) {
      ASSIGN_OR_RETURN(uint32_t index, r.U32("MSR index"));
      ASSIGN_OR_RETURN(uint64_t value, r.U64("MSR value"));
      v.msrs.emplace_back(index, value);
    }
    ASSIGN_OR_RETURN(v.regs, r.Blob<kvm_regs>("regs"));
    ASSIGN_OR_RETURN(v.sregs, r.Blob<kvm_sregs>("sregs"));
    ASSIGN_OR_RETURN(v.fpu, r.Blob<kvm_fpu>("fpu"));
    ASSIGN_OR_RETURN(v.xsave, r.Bytes("xsave", kMaxXsaveBytes));
    if (!v.xsave.empty() && v.xsave.size() < sizeof(kvm_xsave)) {
      return Error("xsave: " + std::to_string(v.xsave.size()) + " bytes is smaller than the legacy area");
    }
    ASSIGN_OR_RETURN(v.has_xcrs, r.Bool("has_xcrs"));
    ASSIGN_OR_RETURN(v.xcrs, r.Blob<kvm_xcrs>("xcrs"));
    if (v.xcrs.nr_xcrs > KVM_MAX_XCRS) return Error("xcrs: " + std::to_string(v.xcrs.nr_xcrs) + " entries");
    ASSIGN_OR_RETURN(v.debugregs, r.Blob<kvm_debugregs>("debugregs"));
    ASSIGN_OR_RETURN(v.lapic, r.Blob<kvm_lapic_state>("lapic"));
    ASSIGN_OR_RETURN(v.mp_state, r.U32("mp_state"));
    ASSIGN_OR_RETURN(v.events, r.Blob<kvm_vcpu_events>("vcpu events"));
    s.vcpus.push_back(std::move(v));
  }

  RETURN_IF_ERROR(ExpectTag(r, kTagLegacy, "legacy devices"));
  SerialState& se = s.serial;
  for (uint8_t* b : {&se.ier, &se.lcr, &se.mcr, &se.lsr, &se.msr, &se.scr, &se.dll, &se.dlm}) {
    ASSIGN_OR_RETURN(*b, r.U8("serial register"));
  }
  ASSIGN_OR_RETURN(se.fifo_enabled, r.Bool("serial fifo_enabled"));
  ASSIGN_OR_RETURN(se.thr_empty_pending, r.Bool("serial thr_empty_pending"));
  ASSIGN_OR_RETURN(se.rx_fifo, r.Bytes("serial rx_fifo", Serial::kRxFifoCapacity));
  ASSIGN_OR_RETURN(s.i8042.status, r.U8("i8042 status"));
  ASSIGN_OR_RETURN(s.i8042.control, r.U8("i8042 control"));
  ASSIGN_OR_RETURN(s.i8042.output_port, r.U8("i8042 output_port"));
  ASSIGN_OR_RETURN(s.i8042.pending_command, r.U8("i8042 pending_command"));
  ASSIGN_OR_RETURN(s.i8042.output, r.Bytes("i8042 output", I8042::kOutputCapacity));

  RETURN_IF_ERROR(ExpectTag(r, kTagVirtio, "virtio devices"));
  ASSIGN_OR_RETURN(uint64_t ndev, r.Count("virtio devices", kMaxDevices));
  for (uint64_t i = 0; i < ndev; ++i) {
    VirtioDeviceSnapshot d;
    ASSIGN_OR_RETURN(d.id, r.String("virtio device id"));
    ASSIGN_OR_RETURN(d.device_type, r.U32("virtio device type"));
    ASSIGN_OR_RETURN(d.mmio_addr, r.U64("virtio MMIO address"));
    ASSIGN_OR_RETURN(d.irq, r.U32("virtio IRQ"));
    MmioTransportState& t = d.transport;
    ASSIGN_OR_RETURN(t.status, r.U32("transport status"));
    ASSIGN_OR_RETURN(t.device_features_sel, r.U32("transport device_features_sel"));
    ASSIGN_OR_RETURN(t.driver_features_sel, r.U32("transport driver_features_sel"));
    ASSIGN_OR_RETURN(t.acked_features, r.U64("transport acked_features"));
    ASSIGN_OR_RETURN(t.queue_sel, r.U32("transport queue_sel"));
    ASSIGN_OR_RETURN(t.interrupt_status, r.U32("transport interrupt_status"));
    ASSIGN_OR_RETURN(t.config_generation, r.U32("transport config_generation"));
    ASSIGN_OR_RETURN(uint64_t nq, r.Count("queues", kMaxQueues));
    for (uint64_t q = 0; q < nq; ++q) {
      ASSIGN_OR_RETURN(QueueState qs, GetQueue(r));
      t.queues.push_back(qs);
    }
    ASSIGN_OR_RETURN(d.device_state, r.Bytes("device state", kMaxDeviceStateBytes));
    s.virtio.push_back(std::move(d));
  }
  RETURN_IF_ERROR(ExpectTag(r, kTagEnd, "end of state"));
  RETURN_IF_ERROR(r.ExpectEnd("snapshot state"));
  return s;
}

std::string DescribeMicroVmState(const MicroVmState& s) {
  std::ostringstream o;
  o << "machine: " << s.machine.vcpu_count << " vCPU(s), " << s.machine.mem_size_mib << " MiB"
    << (s.machine.smt ? ", SMT" : "") << (s.machine.track_dirty_pages ? ", dirty page tracking" : "")
    << "\n";
  o << "kernel: " << s.kernel_image_path << "\n";
  o << "cmdline: " << s.cmdline << "\n";
  o << "memory regions:";
  for (const auto& r : s.memory_regions) o << " " << Hex(r.guest_addr) << "+" << Hex(r.size);
  o << "\n";
  o << "kvm-clock: " << s.vm.clock.clock << " ns\n";
  for (const auto& v : s.vcpus) {
    o << "vCPU " << v.id << ": rip " << Hex(v.regs.rip) << ", rsp " << Hex(v.regs.rsp) << ", cr0 "
      << Hex(v.sregs.cr0) << ", efer " << Hex(v.sregs.efer) << ", mp_state " << v.mp_state << ", "
      << v.msrs.size() << " MSRs, " << v.cpuid.size() << " CPUID entries, xsave "
      << v.xsave.size() << " bytes\n";
  }
  o << "serial: " << s.serial.rx_fifo.size() << " byte(s) of pending input\n";
  for (const auto& d : s.drives) {
    o << "drive " << d.drive_id << ": " << d.path_on_host << (d.is_read_only ? " (read-only)" : "")
      << (d.is_root_device ? " (root)" : "") << "\n";
  }
  for (const auto& n : s.network_interfaces) {
    o << "network interface " << n.iface_id << ": tap " << n.host_dev_name << "\n";
  }
  for (const auto& d : s.virtio) {
    o << "virtio " << d.id << ": type " << d.device_type << " at " << Hex(d.mmio_addr) << " IRQ "
      << d.irq << ", status " << Hex(d.transport.status) << ", features "
      << Hex(d.transport.acked_features) << ", " << d.transport.queues.size() << " queue(s)\n";
  }
  return o.str();
}

}  // namespace hearth
