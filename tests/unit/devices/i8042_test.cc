#include "devices/i8042.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "test_util.h"

namespace hearth {
namespace {

using unit::CountingTrigger;

constexpr uint64_t kData = I8042::kDataOffset;
constexpr uint64_t kCmd = I8042::kCommandOffset;
constexpr uint8_t kObf = 0x01;

class I8042Test : public ::testing::Test {
 protected:
  uint8_t In(uint64_t offset) {
    uint8_t v = 0xaa;
    dev_.Read(offset, std::span(&v, 1));
    return v;
  }
  void Out(uint64_t offset, uint8_t value) { dev_.Write(offset, std::span<const uint8_t>(&value, 1)); }
  std::vector<uint8_t> Drain() {
    std::vector<uint8_t> out;
    while (In(kCmd) & kObf) out.push_back(In(kData));
    return out;
  }

  std::shared_ptr<CountingTrigger> irq_ = std::make_shared<CountingTrigger>();
  int resets_ = 0;
  I8042 dev_{irq_, [this] { ++resets_; }};
};

TEST_F(I8042Test, StatusAfterReset) {
  EXPECT_EQ(In(kCmd), 0x14);  // System flag, keyboard unlocked, output buffer empty.
  EXPECT_EQ(In(kData), 0x00);
  EXPECT_EQ(irq_->count, 0);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, SelfTestRepliesOnDataPort) {
  Out(kCmd, 0xaa);
  EXPECT_EQ(In(kCmd) & kObf, kObf);
  EXPECT_EQ(In(kCmd) & 0x08, 0x08);  // The last write went to the command port.
  EXPECT_EQ(In(kData), 0x55);
  EXPECT_EQ(In(kCmd) & kObf, 0);
}

TEST_F(I8042Test, InterfaceTestRepliesZero) {
  Out(kCmd, 0xab);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x00});
}

TEST_F(I8042Test, ReadAndWriteControlByte) {
  Out(kCmd, 0x20);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x45});  // Interrupt, system flag, translate.

  Out(kCmd, 0x60);
  Out(kData, 0x61);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{});  // The data byte was the command's, not the keyboard's.
  Out(kCmd, 0x20);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x61});
}

TEST_F(I8042Test, WriteControlUpdatesSystemFlag) {
  Out(kCmd, 0x60);
  Out(kData, 0x00);
  EXPECT_EQ(In(kCmd) & 0x04, 0);
  Out(kCmd, 0x60);
  Out(kData, 0x04);
  EXPECT_EQ(In(kCmd) & 0x04, 0x04);
}

TEST_F(I8042Test, DisableAndEnableKeyboard) {
  Out(kCmd, 0xad);
  Out(kCmd, 0x20);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x55});  // 0x45 | disabled (0x10).
  Out(kCmd, 0xae);
  Out(kCmd, 0x20);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x45});
}

TEST_F(I8042Test, OutputPortReadAndWrite) {
  Out(kCmd, 0xd0);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x03});
  Out(kCmd, 0xd1);
  Out(kData, 0xdf);
  EXPECT_EQ(resets_, 0);
  Out(kCmd, 0xd0);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0xdf});
}

TEST_F(I8042Test, PulseResetLineCallsResetOnce) {
  Out(kCmd, 0xfe);
  EXPECT_EQ(resets_, 1);
  Out(kCmd, 0xff);  // Pulses nothing (bit 0 set): no reset.
  EXPECT_EQ(resets_, 1);
  Out(kCmd, 0xf0);  // Bit 0 clear among others: reset.
  EXPECT_EQ(resets_, 2);
}

TEST_F(I8042Test, OutputPortWithResetLineLowResets) {
  Out(kCmd, 0xd1);
  Out(kData, 0x02);
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, KeyboardBytesAreAcknowledged) {
  Out(kData, 0xf4);  // Enable scanning.
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0xfa});
  Out(kData, 0xff);  // Reset.
  EXPECT_EQ(Drain(), (std::vector<uint8_t>{0xfa, 0xaa}));
  Out(kData, 0xf2);  // Identify.
  EXPECT_EQ(Drain(), (std::vector<uint8_t>{0xfa, 0xab, 0x83}));
  EXPECT_EQ(In(kCmd) & 0x08, 0);  // The last write went to the data port.
}

TEST_F(I8042Test, InterruptFiresWhenOutputQueuedAndEnabled) {
  Out(kCmd, 0xaa);
  EXPECT_EQ(irq_->count, 1);
  Out(kData, 0xff);
  EXPECT_EQ(irq_->count, 3);  // Two bytes queued.
  Drain();
  // Interrupts off in the control byte: bytes still queue, no interrupt.
  Out(kCmd, 0x60);
  Out(kData, 0x44);
  int before = irq_->count;
  Out(kCmd, 0xaa);
  EXPECT_EQ(irq_->count, before);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x55});
}

TEST_F(I8042Test, CommandClearsPendingData) {
  Out(kCmd, 0x60);
  Out(kCmd, 0xaa);   // A new command abandons the control-byte write.
  Out(kData, 0x00);  // So this goes to the keyboard.
  EXPECT_EQ(Drain(), (std::vector<uint8_t>{0x55, 0xfa}));
  Out(kCmd, 0x20);
  EXPECT_EQ(Drain(), std::vector<uint8_t>{0x45});
}

TEST_F(I8042Test, SendCtrlAltDelQueuesScanCodes) {
  dev_.SendCtrlAltDel();
  EXPECT_EQ(In(kCmd) & kObf, kObf);
  EXPECT_EQ(irq_->count, 11);
  EXPECT_EQ(Drain(), (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11,
                                           0xf0, 0x14}));
}

TEST_F(I8042Test, OutputBufferIsBounded) {
  for (int i = 0; i < 20; ++i) Out(kCmd, 0xaa);
  EXPECT_EQ(Drain().size(), I8042::kOutputCapacity);
}

TEST_F(I8042Test, UnmappedOffsetReadsAllOnes) {
  EXPECT_EQ(In(1), 0xff);
  Out(2, 0xfe);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, SaveRestoreRoundTrip) {
  Out(kCmd, 0x60);
  Out(kData, 0x07);
  Out(kCmd, 0xd1);  // Leaves a command waiting for its data.
  dev_.SendCtrlAltDel();
  I8042State saved = dev_.Save();
  EXPECT_EQ(saved.control, 0x07);
  EXPECT_EQ(saved.pending_command, 0xd1);
  EXPECT_EQ(saved.output.size(), 11u);

  auto irq2 = std::make_shared<CountingTrigger>();
  int resets2 = 0;
  I8042 restored(irq2, [&] { ++resets2; });
  ASSERT_OK(restored.Restore(saved));
  I8042State again = restored.Save();
  EXPECT_EQ(again.status, saved.status);
  EXPECT_EQ(again.control, saved.control);
  EXPECT_EQ(again.output_port, saved.output_port);
  EXPECT_EQ(again.pending_command, saved.pending_command);
  EXPECT_EQ(again.output, saved.output);
  // The pending 0xd1 takes its data byte after the restore.
  uint8_t v = 0x00;
  restored.Write(kData, std::span<const uint8_t>(&v, 1));
  EXPECT_EQ(resets2, 1);
}

TEST_F(I8042Test, RestoreRejectsBadState) {
  I8042State s;
  s.pending_command = 0xaa;
  EXPECT_ERROR_CONTAINS(dev_.Restore(s), "i8042 state: invalid pending command");
  s.pending_command = 0;
  s.output.assign(17, 0);
  EXPECT_ERROR_CONTAINS(dev_.Restore(s), "i8042 state: output buffer overflows");
}

TEST_F(I8042Test, RestoreRecomputesOutputFull) {
  I8042State s;
  s.status = 0x14 | kObf;  // Claims output, but none is queued.
  ASSERT_OK(dev_.Restore(s));
  EXPECT_EQ(In(kCmd) & kObf, 0);
}

}  // namespace
}  // namespace hearth
