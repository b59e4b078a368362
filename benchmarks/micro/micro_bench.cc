// hearth_micro_bench: the VMM's own hot paths, in-process (no KVM): guest memory accesses, the
// port-I/O bus lookup + dispatch a vCPU exit does, and the UART transmit path a guest console
// write takes. Each benchmark times one call (Google Benchmark repeats it).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "bus/bus.h"
#include "devices/serial.h"
#include "devices/trigger.h"
#include "memory/guest_memory.h"

namespace {

using hearth::Bus;
using hearth::BusDevice;
using hearth::GuestMemory;

GuestMemory MakeMemory() {
  auto mem = GuestMemory::Create({{0, 64ull << 20}});
  if (!mem.ok()) std::abort();
  return std::move(*mem);
}

template <size_t N>
void BM_GuestMemoryRead(benchmark::State& state) {
  GuestMemory mem = MakeMemory();
  std::array<uint8_t, N> buf{};
  uint64_t addr = 0x100000;
  for (auto _ : state) {
    auto s = mem.Read(addr, buf);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(N));
}
BENCHMARK(BM_GuestMemoryRead<8>)->Name("GuestMemory/Read/8B");
BENCHMARK(BM_GuestMemoryRead<4096>)->Name("GuestMemory/Read/4KiB");

template <size_t N>
void BM_GuestMemoryWrite(benchmark::State& state) {
  GuestMemory mem = MakeMemory();
  std::array<uint8_t, N> buf{};
  buf.fill(0x5a);
  uint64_t addr = 0x100000;
  for (auto _ : state) {
    auto s = mem.Write(addr, buf);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(N));
}
BENCHMARK(BM_GuestMemoryWrite<8>)->Name("GuestMemory/Write/8B");
BENCHMARK(BM_GuestMemoryWrite<4096>)->Name("GuestMemory/Write/4KiB");

void BM_GuestMemoryReadObjU64(benchmark::State& state) {
  GuestMemory mem = MakeMemory();
  for (auto _ : state) {
    auto v = mem.ReadObj<uint64_t>(0x100000);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_GuestMemoryReadObjU64)->Name("GuestMemory/ReadObj<u64>");

class NullDevice : public BusDevice {
 public:
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0xff;
  }
  void Write(uint64_t, std::span<const uint8_t>) override {}
};

class CountingTrigger : public hearth::Trigger {
 public:
  void Fire() override { ++fired; }
  uint64_t fired = 0;
};

class NullSink : public hearth::ByteSink {
 public:
  void Write(std::span<const uint8_t> bytes) override { benchmark::DoNotOptimize(bytes.data()); }
};

// The legacy port layout of a microVM: i8042, PIT/PIC-ish ranges, the power port, COM1.
Bus MakePioBus(std::shared_ptr<BusDevice> com1) {
  Bus bus("pio");
  auto must = [](hearth::Status s) {
    if (!s.ok()) std::abort();
  };
  must(bus.Insert(std::make_shared<NullDevice>(), 0x20, 2));
  must(bus.Insert(std::make_shared<NullDevice>(), 0x40, 4));
  must(bus.Insert(std::make_shared<NullDevice>(), 0x60, 5));
  must(bus.Insert(std::make_shared<NullDevice>(), 0x70, 2));
  must(bus.Insert(std::make_shared<NullDevice>(), 0x2f8, 8));
  must(bus.Insert(std::make_shared<NullDevice>(), 0x3f4, 1));
  must(bus.Insert(std::move(com1), 0x3f8, 8));
  return bus;
}

void BM_BusWriteNullDevice(benchmark::State& state) {
  Bus bus = MakePioBus(std::make_shared<NullDevice>());
  const uint8_t byte = 'x';
  for (auto _ : state) {
    bool hit = bus.Write(0x3f8, std::span(&byte, 1));
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_BusWriteNullDevice)->Name("Bus/Write/port 0x3f8 -> null device");

void BM_BusReadNullDevice(benchmark::State& state) {
  Bus bus = MakePioBus(std::make_shared<NullDevice>());
  uint8_t byte = 0;
  for (auto _ : state) {
    bool hit = bus.Read(0x3fd, std::span(&byte, 1));
    benchmark::DoNotOptimize(hit);
    benchmark::DoNotOptimize(byte);
  }
}
BENCHMARK(BM_BusReadNullDevice)->Name("Bus/Read/port 0x3fd -> null device");

void BM_BusMiss(benchmark::State& state) {
  Bus bus = MakePioBus(std::make_shared<NullDevice>());
  uint8_t byte = 0;
  for (auto _ : state) {
    bool hit = bus.Read(0x80, std::span(&byte, 1));
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_BusMiss)->Name("Bus/Read/unclaimed port 0x80");

// THR write: the byte goes to the sink; with IER.THRE set (as Linux's 8250 driver runs) the
// THR-empty interrupt is raised on every byte.
void BM_SerialThrWrite(benchmark::State& state) {
  auto irq = std::make_shared<CountingTrigger>();
  hearth::Serial serial(irq, std::make_shared<NullSink>());
  const uint8_t ier = static_cast<uint8_t>(state.range(0));
  serial.Write(1, std::span(&ier, 1));
  const uint8_t byte = 'x';
  for (auto _ : state) serial.Write(0, std::span(&byte, 1));
  benchmark::DoNotOptimize(irq->fired);
}
BENCHMARK(BM_SerialThrWrite)->Name("Serial/THR write (IER=0)")->Arg(0);
BENCHMARK(BM_SerialThrWrite)->Name("Serial/THR write (IER=THRE)")->Arg(2);

// A guest console byte as the vCPU thread handles it: bus lookup, dispatch, UART THR path.
void BM_BusSerialThrWrite(benchmark::State& state) {
  auto irq = std::make_shared<CountingTrigger>();
  Bus bus = MakePioBus(std::make_shared<hearth::Serial>(irq, std::make_shared<NullSink>()));
  const uint8_t byte = 'x';
  for (auto _ : state) {
    bool hit = bus.Write(0x3f8, std::span(&byte, 1));
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_BusSerialThrWrite)->Name("Bus+Serial/THR write via port 0x3f8");

}  // namespace

BENCHMARK_MAIN();
