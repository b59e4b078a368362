#include "tests/virtio_support/virtio_driver.h"

#include <cstdlib>
#include <cstdio>

namespace hearth::testing {
namespace {

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "VirtioDriver: %s: %s\n", what, s.error().message().c_str());
    std::abort();
  }
}

template <typename T>
T ReadOrDie(const GuestMemory& memory, uint64_t addr) {
  auto v = memory.ReadObj<T>(addr);
  if (!v.ok()) {
    std::fprintf(stderr, "VirtioDriver: read at 0x%llx: %s\n", static_cast<unsigned long long>(addr),
                 v.error().message().c_str());
    std::abort();
  }
  return *v;
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

VirtioDriver::VirtioDriver(GuestMemory& memory, uint64_t ring_base, uint16_t size, uint64_t data_base)
    : memory_(memory), size_(size), next_data_(data_base) {
  desc_ = AlignUp(ring_base, 16);
  avail_ = AlignUp(desc_ + 16ull * size, 2);
  used_ = AlignUp(avail_ + 6 + 2ull * size, 4);
  uint64_t end = used_ + 6 + 8ull * size;
  Check(memory_.Fill(desc_, 0, end - desc_), "clear rings");
}

void VirtioDriver::Configure(Queue& queue, bool event_idx, bool indirect) const {
  queue.set_size(size_);
  queue.set_desc_table(desc_);
  queue.set_avail_ring(avail_);
  queue.set_used_ring(used_);
  queue.set_features(event_idx, indirect);
  queue.set_ready(true);
}

uint64_t VirtioDriver::Alloc(uint64_t bytes) {
  uint64_t addr = AlignUp(next_data_, 8);
  if (!memory_.IsValidRange(addr, bytes)) {
    std::fprintf(stderr, "VirtioDriver: out of guest memory for %llu bytes\n",
                 static_cast<unsigned long long>(bytes));
    std::abort();
  }
  next_data_ = addr + bytes;
  return addr;
}

uint64_t VirtioDriver::AllocWith(std::span<const uint8_t> bytes) {
  uint64_t addr = Alloc(bytes.size());
  WriteBytes(addr, bytes);
  return addr;
}

uint16_t VirtioDriver::AddChain(const std::vector<BufferSpec>& buffers) {
  const uint16_t head = next_desc_;
  for (size_t i = 0; i < buffers.size(); ++i) {
    uint16_t index = static_cast<uint16_t>((head + i) % size_);
    uint16_t next = static_cast<uint16_t>((index + 1) % size_);
    uint16_t flags = static_cast<uint16_t>((buffers[i].device_writes ? kVirtqDescWrite : 0) |
                                           (i + 1 < buffers.size() ? kVirtqDescNext : 0));
    WriteDescriptor(index, VirtqDesc{buffers[i].addr, buffers[i].len, flags, next});
  }
  next_desc_ = static_cast<uint16_t>((head + buffers.size()) % size_);
  PublishHead(head);
  return head;
}

uint16_t VirtioDriver::AddIndirectChain(const std::vector<BufferSpec>& buffers) {
  uint64_t table = Alloc(16ull * buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i) {
    uint16_t flags = static_cast<uint16_t>((buffers[i].device_writes ? kVirtqDescWrite : 0) |
                                           (i + 1 < buffers.size() ? kVirtqDescNext : 0));
    WriteDescriptorAt(table, static_cast<uint16_t>(i),
                      VirtqDesc{buffers[i].addr, buffers[i].len, flags, static_cast<uint16_t>(i + 1)});
  }
  const uint16_t head = next_desc_;
  WriteDescriptor(head, VirtqDesc{table, static_cast<uint32_t>(16 * buffers.size()), kVirtqDescIndirect, 0});
  next_desc_ = static_cast<uint16_t>((head + 1) % size_);
  PublishHead(head);
  return head;
}

void VirtioDriver::WriteDescriptor(uint16_t index, const VirtqDesc& desc) {
  WriteDescriptorAt(desc_, index, desc);
}

void VirtioDriver::WriteDescriptorAt(uint64_t table, uint16_t index, const VirtqDesc& desc) {
  Check(memory_.WriteObj(table + 16ull * index, desc), "write descriptor");
}

void VirtioDriver::PublishHead(uint16_t head) {
  uint16_t idx = avail_idx();
  Check(memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * (idx % size_), head), "write avail ring");
  SetAvailIdx(static_cast<uint16_t>(idx + 1));
}

void VirtioDriver::SetAvailIdx(uint16_t idx) { Check(memory_.WriteObj(avail_ + 2, idx), "write avail idx"); }
uint16_t VirtioDriver::avail_idx() const { return ReadOrDie<uint16_t>(memory_, avail_ + 2); }
void VirtioDriver::SetAvailFlags(uint16_t flags) { Check(memory_.WriteObj(avail_, flags), "write avail flags"); }
void VirtioDriver::SetUsedEvent(uint16_t value) {
  Check(memory_.WriteObj(avail_ + 4 + 2ull * size_, value), "write used_event");
}

uint16_t VirtioDriver::used_idx() const { return ReadOrDie<uint16_t>(memory_, used_ + 2); }
uint16_t VirtioDriver::used_flags() const { return ReadOrDie<uint16_t>(memory_, used_); }
uint16_t VirtioDriver::avail_event() const { return ReadOrDie<uint16_t>(memory_, used_ + 4 + 8ull * size_); }

VirtqUsedElem VirtioDriver::used_elem(uint16_t ring_slot) const {
  return ReadOrDie<VirtqUsedElem>(memory_, used_ + 4 + 8ull * (ring_slot % size_));
}

std::vector<VirtqUsedElem> VirtioDriver::UsedSince(uint16_t from) const {
  std::vector<VirtqUsedElem> out;
  for (uint16_t i = from; i != used_idx(); ++i) out.push_back(used_elem(i));
  return out;
}

std::vector<uint8_t> VirtioDriver::ReadBytes(uint64_t addr, uint64_t len) const {
  std::vector<uint8_t> out(len);
  Check(memory_.Read(addr, out), "read bytes");
  return out;
}

void VirtioDriver::WriteBytes(uint64_t addr, std::span<const uint8_t> bytes) {
  Check(memory_.Write(addr, bytes), "write bytes");
}

}  // namespace hearth::testing
