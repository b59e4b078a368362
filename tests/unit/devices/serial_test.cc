#include "devices/serial.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "test_util.h"

namespace hearth {
namespace {

using unit::CountingTrigger;
using unit::RecordingSink;

// Register offsets and bits of a 16550A.
constexpr uint64_t kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
constexpr uint8_t kLsrDr = 0x01, kLsrOe = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40;

class SerialTest : public ::testing::Test {
 protected:
  uint8_t In(uint64_t offset) {
    uint8_t v = 0xaa;
    serial_.Read(offset, std::span(&v, 1));
    return v;
  }
  void Out(uint64_t offset, uint8_t value) { serial_.Write(offset, std::span<const uint8_t>(&value, 1)); }
  size_t Enqueue(const std::vector<uint8_t>& bytes) { return serial_.EnqueueInput(bytes); }

  std::shared_ptr<CountingTrigger> irq_ = std::make_shared<CountingTrigger>();
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  std::shared_ptr<CountingTrigger> rx_space_ = std::make_shared<CountingTrigger>();
  Serial serial_{irq_, sink_, rx_space_};
};

TEST_F(SerialTest, ResetState) {
  EXPECT_EQ(In(kLsr), kLsrThre | kLsrTemt);
  EXPECT_EQ(In(kIirFcr), 0x01);  // No interrupt pending, FIFOs off.
  EXPECT_EQ(In(kIer), 0);
  EXPECT_EQ(In(kLcr), 0);
  EXPECT_EQ(In(kMcr), 0);
  EXPECT_EQ(In(kMsr), 0xb0);  // DCD, DSR, CTS: a terminal is connected.
  EXPECT_EQ(In(kRbrThr), 0);  // Empty receiver.
  EXPECT_EQ(irq_->count, 0);
}

TEST_F(SerialTest, ThrWriteGoesToSink) {
  for (uint8_t c : {'h', 'i', '\n'}) Out(kRbrThr, c);
  EXPECT_EQ(sink_->bytes, (std::vector<uint8_t>{'h', 'i', '\n'}));
  EXPECT_EQ(In(kLsr) & (kLsrThre | kLsrTemt), kLsrThre | kLsrTemt);
  EXPECT_EQ(irq_->count, 0);  // THR-empty interrupt not enabled.
}

TEST_F(SerialTest, ThrEmptyInterruptWhenEnabled) {
  Out(kIer, 0x02);
  EXPECT_EQ(irq_->count, 1);  // Enabling with an empty THR raises it at once.
  EXPECT_EQ(In(kIirFcr), 0x02);
  EXPECT_EQ(In(kIirFcr), 0x01);  // Reading IIR acknowledged it.

  Out(kRbrThr, 'x');
  EXPECT_EQ(irq_->count, 2);
  EXPECT_EQ(In(kIirFcr), 0x02);
  EXPECT_EQ(In(kIirFcr), 0x01);
  EXPECT_EQ(sink_->bytes, std::vector<uint8_t>{'x'});
}

TEST_F(SerialTest, ReenablingThrEmptyRaisesAgain) {
  Out(kIer, 0x02);
  EXPECT_EQ(In(kIirFcr), 0x02);
  Out(kIer, 0x02);  // Already enabled: no new edge.
  EXPECT_EQ(In(kIirFcr), 0x01);
  EXPECT_EQ(irq_->count, 1);
  Out(kIer, 0x00);
  Out(kIer, 0x02);
  EXPECT_EQ(irq_->count, 2);
  EXPECT_EQ(In(kIirFcr), 0x02);
}

TEST_F(SerialTest, IerKeepsOnlyDefinedBits) {
  Out(kIer, 0xff);
  EXPECT_EQ(In(kIer), 0x0f);
}

TEST_F(SerialTest, ReceivedBytesReadInOrder) {
  EXPECT_EQ(Enqueue({'a', 'b', 'c'}), 3u);
  EXPECT_EQ(In(kLsr) & kLsrDr, kLsrDr);
  EXPECT_EQ(irq_->count, 0);  // RX interrupt not enabled.
  EXPECT_EQ(In(kRbrThr), 'a');
  EXPECT_EQ(In(kRbrThr), 'b');
  EXPECT_EQ(In(kLsr) & kLsrDr, kLsrDr);
  EXPECT_EQ(In(kRbrThr), 'c');
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
  EXPECT_EQ(In(kRbrThr), 0);
  EXPECT_EQ(serial_.rx_space(), Serial::kRxFifoCapacity);
}

TEST_F(SerialTest, ReceiveInterruptWhenEnabled) {
  Out(kIer, 0x01);
  EXPECT_EQ(irq_->count, 0);  // Nothing received yet.
  EXPECT_EQ(Enqueue({'q'}), 1u);
  EXPECT_EQ(irq_->count, 1);
  EXPECT_EQ(In(kIirFcr), 0x04);
  EXPECT_EQ(In(kIirFcr), 0x04);  // Stays pending until the data is read.
  EXPECT_EQ(In(kRbrThr), 'q');
  EXPECT_EQ(In(kIirFcr), 0x01);
}

TEST_F(SerialTest, ReceiveInterruptTakesPriorityOverThrEmpty) {
  Out(kIer, 0x03);
  EXPECT_EQ(Enqueue({'z'}), 1u);
  EXPECT_EQ(In(kIirFcr), 0x04);
  EXPECT_EQ(In(kRbrThr), 'z');
  EXPECT_EQ(In(kIirFcr), 0x02);  // THR empty was pending behind it.
  EXPECT_EQ(In(kIirFcr), 0x01);
}

TEST_F(SerialTest, FifoCapacityLimitsInput) {
  std::vector<uint8_t> many(100);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Enqueue(many), 64u);
  EXPECT_EQ(serial_.rx_space(), 0u);
  EXPECT_EQ(Enqueue({1, 2}), 0u);
  EXPECT_EQ(In(kLsr) & kLsrOe, 0);  // Refused input is not an overrun: the host keeps it.
  for (uint8_t i = 0; i < 64; ++i) ASSERT_EQ(In(kRbrThr), i);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
}

TEST_F(SerialTest, RxSpaceFiresWhenFullFifoDrains) {
  EXPECT_EQ(Enqueue(std::vector<uint8_t>(64, 'x')), 64u);
  EXPECT_EQ(rx_space_->count, 0);
  In(kRbrThr);
  EXPECT_EQ(rx_space_->count, 1);
  EXPECT_EQ(serial_.rx_space(), 1u);
  In(kRbrThr);
  EXPECT_EQ(rx_space_->count, 1);  // Only the full -> not-full transition fires.
}

TEST_F(SerialTest, RxSpaceNotFiredWhenFifoWasNotFull) {
  EXPECT_EQ(Enqueue(std::vector<uint8_t>(10, 'x')), 10u);
  for (int i = 0; i < 10; ++i) In(kRbrThr);
  EXPECT_EQ(rx_space_->count, 0);
}

TEST_F(SerialTest, DlabRoutesDivisorLatch) {
  Out(kLcr, 0x83);  // DLAB + 8N1.
  Out(kRbrThr, 0x01);
  Out(kIer, 0x02);
  EXPECT_EQ(In(kRbrThr), 0x01);
  EXPECT_EQ(In(kIer), 0x02);
  EXPECT_TRUE(sink_->bytes.empty());  // Not transmitted.
  EXPECT_EQ(irq_->count, 0);          // Not an IER write.
  Out(kLcr, 0x03);
  EXPECT_EQ(In(kIer), 0x00);  // The real IER was not touched.
  EXPECT_EQ(In(kLcr), 0x03);
  Out(kRbrThr, 'k');
  EXPECT_EQ(sink_->bytes, std::vector<uint8_t>{'k'});
  Out(kLcr, 0x80);
  EXPECT_EQ(In(kRbrThr), 0x01);  // The divisor survived.
}

TEST_F(SerialTest, DefaultDivisorIs9600Baud) {
  Out(kLcr, 0x80);
  EXPECT_EQ(In(kRbrThr), 0x0c);
  EXPECT_EQ(In(kIer), 0x00);
}

TEST_F(SerialTest, ScratchRegisterHoldsValue) {
  Out(kScr, 0x5a);
  EXPECT_EQ(In(kScr), 0x5a);
  Out(kScr, 0xa5);
  EXPECT_EQ(In(kScr), 0xa5);
}

TEST_F(SerialTest, LoopbackEchoesToReceiver) {
  Out(kMcr, 0x10);
  Out(kRbrThr, 0x42);
  EXPECT_TRUE(sink_->bytes.empty());
  EXPECT_EQ(In(kLsr) & kLsrDr, kLsrDr);
  EXPECT_EQ(In(kRbrThr), 0x42);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
}

TEST_F(SerialTest, LoopbackMsrMirrorsMcr) {
  Out(kMcr, 0x10);
  EXPECT_EQ(In(kMsr), 0x00);
  Out(kMcr, 0x10 | 0x02);  // RTS -> CTS.
  EXPECT_EQ(In(kMsr), 0x10);
  Out(kMcr, 0x10 | 0x01);  // DTR -> DSR.
  EXPECT_EQ(In(kMsr), 0x20);
  Out(kMcr, 0x10 | 0x04);  // OUT1 -> RI.
  EXPECT_EQ(In(kMsr), 0x40);
  Out(kMcr, 0x10 | 0x08);  // OUT2 -> DCD.
  EXPECT_EQ(In(kMsr), 0x80);
  Out(kMcr, 0x1f);
  EXPECT_EQ(In(kMsr), 0xf0);
  Out(kMcr, 0x0f);  // Loopback off: the line's own status again.
  EXPECT_EQ(In(kMsr), 0xb0);
}

TEST_F(SerialTest, LoopbackIgnoresHostInput) {
  Out(kMcr, 0x10);
  EXPECT_EQ(Enqueue({'a', 'b'}), 2u);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
}

TEST_F(SerialTest, McrKeepsOnlyDefinedBits) {
  Out(kMcr, 0xff);
  EXPECT_EQ(In(kMcr), 0x1f);
}

TEST_F(SerialTest, FcrEnableReflectedInIir) {
  Out(kIirFcr, 0x01);
  EXPECT_EQ(In(kIirFcr), 0xc1);
  Out(kIer, 0x02);
  EXPECT_EQ(In(kIirFcr), 0xc2);
  Out(kIirFcr, 0x00);
  EXPECT_EQ(In(kIirFcr), 0x01);
}

TEST_F(SerialTest, FcrClearsReceiveFifo) {
  EXPECT_EQ(Enqueue({'1', '2', '3'}), 3u);
  Out(kIirFcr, 0x03);
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
  EXPECT_EQ(In(kRbrThr), 0);
  EXPECT_EQ(serial_.rx_space(), 64u);
  EXPECT_EQ(rx_space_->count, 0);
  // Clearing a full FIFO makes room: the VMM is told.
  EXPECT_EQ(Enqueue(std::vector<uint8_t>(64, 'y')), 64u);
  Out(kIirFcr, 0x02);
  EXPECT_EQ(rx_space_->count, 1);
}

TEST_F(SerialTest, LoopbackOverrunSetsAndClearsOnRead) {
  Out(kMcr, 0x10);
  for (int i = 0; i < 65; ++i) Out(kRbrThr, static_cast<uint8_t>(i));
  uint8_t lsr = In(kLsr);
  EXPECT_EQ(lsr & kLsrOe, kLsrOe);
  EXPECT_EQ(In(kLsr) & kLsrOe, 0);  // Error bits clear on read.
  EXPECT_EQ(In(kRbrThr), 0);
}

TEST_F(SerialTest, OutOfRangeOffsetsAreHarmless) {
  EXPECT_EQ(In(8), 0xff);
  Out(8, 'x');
  EXPECT_TRUE(sink_->bytes.empty());
  // A wide read returns the register in the low byte, zeros above.
  Out(kScr, 0x77);
  uint8_t wide[4] = {0xaa, 0xaa, 0xaa, 0xaa};
  serial_.Read(kScr, wide);
  EXPECT_EQ(wide[0], 0x77);
  EXPECT_EQ(wide[1], 0);
  EXPECT_EQ(wide[3], 0);
}

TEST_F(SerialTest, SaveRestoreRoundTrip) {
  Out(kLcr, 0x80);
  Out(kRbrThr, 0x03);
  Out(kIer, 0x00);
  Out(kLcr, 0x1b);
  Out(kIer, 0x01);
  Out(kMcr, 0x0b);
  Out(kScr, 0x99);
  Out(kIirFcr, 0x01);
  EXPECT_EQ(Enqueue({'p', 'q'}), 2u);
  SerialState saved = serial_.Save();
  EXPECT_EQ(saved.rx_fifo, (std::vector<uint8_t>{'p', 'q'}));
  EXPECT_EQ(saved.dll, 0x03);
  EXPECT_EQ(saved.scr, 0x99);
  EXPECT_TRUE(saved.fifo_enabled);

  auto irq2 = std::make_shared<CountingTrigger>();
  auto sink2 = std::make_shared<RecordingSink>();
  Serial restored(irq2, sink2);
  ASSERT_OK(restored.Restore(saved));
  SerialState again = restored.Save();
  EXPECT_EQ(again.ier, saved.ier);
  EXPECT_EQ(again.lcr, saved.lcr);
  EXPECT_EQ(again.mcr, saved.mcr);
  EXPECT_EQ(again.lsr, saved.lsr);
  EXPECT_EQ(again.msr, saved.msr);
  EXPECT_EQ(again.scr, saved.scr);
  EXPECT_EQ(again.dll, saved.dll);
  EXPECT_EQ(again.dlm, saved.dlm);
  EXPECT_EQ(again.fifo_enabled, saved.fifo_enabled);
  EXPECT_EQ(again.thr_empty_pending, saved.thr_empty_pending);
  EXPECT_EQ(again.rx_fifo, saved.rx_fifo);

  // And it behaves like the original.
  uint8_t v = 0;
  restored.Read(kIirFcr, std::span(&v, 1));
  EXPECT_EQ(v, 0xc4);
  restored.Read(kRbrThr, std::span(&v, 1));
  EXPECT_EQ(v, 'p');
  restored.Read(kRbrThr, std::span(&v, 1));
  EXPECT_EQ(v, 'q');
}

TEST_F(SerialTest, RestoreRejectsOverlongFifo) {
  SerialState s;
  s.rx_fifo.assign(65, 'x');
  EXPECT_ERROR_CONTAINS(serial_.Restore(s), "serial state: RX FIFO overflows");
  s.rx_fifo.assign(64, 'x');
  EXPECT_OK(serial_.Restore(s));
}

TEST_F(SerialTest, RestoreRejectsReservedBits) {
  SerialState s;
  s.ier = 0x10;
  EXPECT_ERROR_CONTAINS(serial_.Restore(s), "reserved IER/MCR bits set");
  s.ier = 0;
  s.mcr = 0x20;
  EXPECT_ERROR_CONTAINS(serial_.Restore(s), "reserved IER/MCR bits set");
}

TEST_F(SerialTest, RestoreRecomputesDataReady) {
  SerialState s;
  s.lsr = kLsrThre | kLsrTemt | kLsrDr;  // Claims data, but the FIFO is empty.
  ASSERT_OK(serial_.Restore(s));
  EXPECT_EQ(In(kLsr) & kLsrDr, 0);
  s.lsr = kLsrThre | kLsrTemt;
  s.rx_fifo = {'r'};
  ASSERT_OK(serial_.Restore(s));
  EXPECT_EQ(In(kLsr) & kLsrDr, kLsrDr);
  EXPECT_EQ(In(kRbrThr), 'r');
}

TEST(Serial, WorksWithoutSinkOrTriggers) {
  Serial serial(nullptr, nullptr);
  uint8_t v = 'x';
  serial.Write(1, std::span<const uint8_t>(&v, 1));  // IER: would fire.
  serial.Write(0, std::span<const uint8_t>(&v, 1));
  EXPECT_EQ(serial.EnqueueInput(std::vector<uint8_t>(64, 1)), 64u);
  serial.Read(0, std::span(&v, 1));
  EXPECT_EQ(v, 1);
}

}  // namespace
}  // namespace hearth
