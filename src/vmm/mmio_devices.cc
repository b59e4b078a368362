#include "vmm/mmio_devices.h"
#include <sys/epoll.h>

#include <sstream>

#include "base/log.h"
#include "boot/layout.h"

namespace hearth {

Result<MmioDevices::Slot> MmioDevices::Allocate() {
  if (next_irq_ > kLastIrq) return Error("too many devices: no interrupt line left");
  if (next_addr_ + kWindowSize > layout::kIoapicAddr) return Error("too many devices: MMIO space exhausted");
  Slot slot{next_addr_, next_irq_};
  next_addr_ += kWindowSize;
  ++next_irq_;
  return slot;
}

Status MmioDevices::Attach(const std::string& id, std::shared_ptr<VirtioDevice> device, Vm& vm,
                           Bus& mmio, Cmdline& cmdline) {
  ASSIGN_OR_RETURN(Slot slot, Allocate());
  ASSIGN_OR_RETURN(auto irq, vm.CreateIrqLine(slot.irq));
  const size_t queue_count = device->queue_max_sizes().size();
  auto transport = std::make_shared<LockedDevice<MmioTransport>>(std::move(device), &vm.memory(), irq);
  RETURN_IF_ERROR(mmio.Insert(transport, slot.addr, kWindowSize));
  Attached attached{id, slot, transport, {}};
  for (size_t q = 0; q < queue_count; ++q) {
    ASSIGN_OR_RETURN(EventFd event, EventFd::Create());
    RETURN_IF_ERROR(vm.kvm_vm().AssignIoeventfd(event.get(), slot.addr + mmio::kQueueNotify, 4, q));
    attached.queue_events.push_back(std::move(event));
  }
  std::ostringstream param;
  param << "virtio_mmio.device=4K@0x" << std::hex << slot.addr << std::dec << ":" << slot.irq;
  RETURN_IF_ERROR(cmdline.Append(param.str()));
  LOG_INFO("device " << id << " at MMIO 0x" << std::hex << slot.addr << std::dec << ", IRQ " << slot.irq);
  attached_.push_back(std::move(attached));
  return Ok();
}

Status MmioDevices::Watch(EventLoop& loop) {
  for (auto& a : attached_) {
    auto transport = a.transport;
    for (size_t q = 0; q < a.queue_events.size(); ++q) {
      const EventFd* event = &a.queue_events[q];
      RETURN_IF_ERROR(loop.Add(event->get(), EPOLLIN, [transport, event, q](uint32_t) {
        (void)event->Consume();
        transport->With([q](MmioTransport& t) { t.Notify(static_cast<uint32_t>(q)); });
      }));
    }
    auto sources = transport->With([](MmioTransport& t) { return t.device().event_sources(); });
    for (const auto& source : sources) {
      int fd = source.fd;
      RETURN_IF_ERROR(loop.Add(fd, source.events, [transport, fd](uint32_t events) {
        transport->With([fd, events](MmioTransport& t) { t.device().OnEvent(fd, events); });
      }));
    }
  }
  return Ok();
}

void MmioDevices::Unwatch(EventLoop& loop) {
  for (auto& a : attached_) {
    for (const auto& event : a.queue_events) (void)loop.Remove(event.get());
    auto sources = a.transport->With([](MmioTransport& t) { return t.device().event_sources(); });
    for (const auto& source : sources) (void)loop.Remove(source.fd);
  }
}

MmioDevices::Attached* MmioDevices::Find(const std::string& id) {
  for (auto& a : attached_) {
    if (a.id == id) return &a;
  }
  return nullptr;
}

}  // namespace hearth
