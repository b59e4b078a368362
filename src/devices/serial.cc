#include "devices/serial.h"

namespace hearth {
namespace {
// Register offsets.
constexpr uint64_t kData = 0;  // RBR (read) / THR (write) / DLL with DLAB.
constexpr uint64_t kIer = 1;   // DLM with DLAB.
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerMask = 0x0f;

constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrIdle = 0x40;

constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
// A connected terminal: carrier, data set ready, clear to send.
constexpr uint8_t kMsrConnected = kMsrDcd | kMsrDsr | kMsrCts;
}  // namespace

Serial::Serial(std::shared_ptr<Trigger> irq, std::shared_ptr<ByteSink> out,
               std::shared_ptr<Trigger> rx_space)
    : irq_(std::move(irq)),
      out_(std::move(out)),
      rx_space_(std::move(rx_space)),
      lsr_(kLsrThrEmpty | kLsrIdle),
      msr_(kMsrConnected) {}

bool Serial::dlab() const { return (lcr_ & kLcrDlab) != 0; }
bool Serial::loop() const { return (mcr_ & kMcrLoop) != 0; }

void Serial::Read(uint64_t offset, std::span<uint8_t> data) {
  // The UART has byte registers; wider accesses read the register and pad with zeros.
  if (data.empty()) return;
  for (auto& b : data) b = 0;
  data[0] = offset < kRegisterCount ? ReadRegister(offset) : 0xff;
}

void Serial::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= kRegisterCount) return;
  WriteRegister(offset, data[0]);
}

uint8_t Serial::InterruptId() const {
  if ((ier_ & kIerRxData) && (lsr_ & kLsrDataReady)) return kIirRxData;
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return kIirThrEmpty;
  return kIirNone;
}

void Serial::UpdateInterrupt() {
  // The line is edge-triggered (ISA IRQ 4): fire whenever a cause is pending after a change.
  if (InterruptId() != kIirNone && irq_) irq_->Fire();
}

void Serial::PushRx(uint8_t byte) {
  if (rx_fifo_.size() >= kRxFifoCapacity) {
    lsr_ |= kLsrOverrun;
    return;
  }
  rx_fifo_.push_back(byte);
  lsr_ |= kLsrDataReady;
}

uint8_t Serial::ReadRegister(uint64_t offset) {
  switch (offset) {
    case kData: {
      if (dlab()) return dll_;
      if (rx_fifo_.empty()) return 0;
      bool was_full = rx_fifo_.size() == kRxFifoCapacity;
      uint8_t byte = rx_fifo_.front();
      rx_fifo_.pop_front();
      if (rx_fifo_.empty()) lsr_ &= static_cast<uint8_t>(~kLsrDataReady);
      if (was_full && rx_space_) rx_space_->Fire();
      UpdateInterrupt();
      return byte;
    }
    case kIer:
      return dlab() ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t id = InterruptId();
      // Reading IIR acknowledges a THR-empty interrupt.
      if (id == kIirThrEmpty) thr_empty_pending_ = false;
      return static_cast<uint8_t>(id | (fifo_enabled_ ? kIirFifoEnabled : 0));
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      uint8_t value = lsr_;
      lsr_ &= static_cast<uint8_t>(~kLsrOverrun);  // Error bits clear on read.
      return value;
    }
    case kMsr: {
      if (!loop()) return msr_;
      // Loopback: the modem outputs feed the modem inputs.
      uint8_t v = 0;
      if (mcr_ & kMcrRts) v |= kMsrCts;
      if (mcr_ & kMcrDtr) v |= kMsrDsr;
      if (mcr_ & kMcrOut1) v |= kMsrRi;
      if (mcr_ & kMcrOut2) v |= kMsrDcd;
      return v;
    }
    case kScr:
      return scr_;
  }
  return 0xff;
}

void Serial::WriteRegister(uint64_t offset, uint8_t value) {
  switch (offset) {
    case kData:
      if (dlab()) {
        dll_ = value;
        return;
      }
      if (loop()) {
        PushRx(value);
      } else if (out_) {
        out_->Write(std::span(&value, 1));
      }
      // The byte leaves at once, so the holding register is empty again.
      thr_empty_pending_ = true;
      UpdateInterrupt();
      return;
    case kIer:
      if (dlab()) {
        dlm_ = value;
        return;
      }
      {
        bool thr_newly_enabled = !(ier_ & kIerThrEmpty) && (value & kIerThrEmpty);
        ier_ = value & kIerMask;
        if (thr_newly_enabled) thr_empty_pending_ = true;
      }
      UpdateInterrupt();
      return;
    case kIirFcr:
      fifo_enabled_ = (value & kFcrEnable) != 0;
      if (value & kFcrClearRx) {
        bool was_full = rx_fifo_.size() == kRxFifoCapacity;
        rx_fifo_.clear();
        lsr_ &= static_cast<uint8_t>(~kLsrDataReady);
        if (was_full && rx_space_) rx_space_->Fire();
      }
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      mcr_ = value & kMcrMask;
      return;
    case kScr:
      scr_ = value;
      return;
    default:
      return;  // LSR and MSR are read-only.
  }
}

size_t Serial::EnqueueInput(std::span<const uint8_t> bytes) {
  // In loopback mode the line is disconnected from the host.
  if (loop()) return bytes.size();
  size_t n = std::min(bytes.size(), rx_space());
  for (size_t i = 0; i < n; ++i) PushRx(bytes[i]);
  if (n > 0) UpdateInterrupt();
  return n;
}

SerialState Serial::Save() const {
  return SerialState{ier_, lcr_, mcr_, lsr_, msr_, scr_, dll_, dlm_, fifo_enabled_,
                     thr_empty_pending_, std::vector<uint8_t>(rx_fifo_.begin(), rx_fifo_.end())};
}

Status Serial::Restore(const SerialState& s) {
  if (s.rx_fifo.size() > kRxFifoCapacity) return Error("serial state: RX FIFO overflows");
  if ((s.ier & ~kIerMask) != 0 || (s.mcr & ~kMcrMask) != 0) {
    return Error("serial state: reserved IER/MCR bits set");
  }
  ier_ = s.ier;
  lcr_ = s.lcr;
  mcr_ = s.mcr;
  lsr_ = s.lsr;
  msr_ = s.msr;
  scr_ = s.scr;
  dll_ = s.dll;
  dlm_ = s.dlm;
  fifo_enabled_ = s.fifo_enabled;
  thr_empty_pending_ = s.thr_empty_pending;
  rx_fifo_.assign(s.rx_fifo.begin(), s.rx_fifo.end());
  // Data ready must agree with the FIFO, whatever the file said.
  if (rx_fifo_.empty()) {
    lsr_ &= static_cast<uint8_t>(~kLsrDataReady);
  } else {
    lsr_ |= kLsrDataReady;
  }
  return Ok();
}

}  // namespace hearth
