#include "vmm/host_kind.h"

#include <gtest/gtest.h>

#include "boot/cmdline.h"

#include "test_util.h"

namespace hearth {
namespace {

TEST(HostKind, ResolvesExplicitSettings) {
  auto pvm = ResolveHostKind("pvm");
  ASSERT_OK(pvm);
  EXPECT_EQ(*pvm, HostKind::kPvm);
  auto hw = ResolveHostKind("hardware");
  ASSERT_OK(hw);
  EXPECT_EQ(*hw, HostKind::kHardware);
}

TEST(HostKind, AutoDetects) {
  auto kind = ResolveHostKind("auto");
  ASSERT_OK(kind);
  EXPECT_EQ(*kind, DetectHostKind());
}

TEST(HostKind, RejectsUnknownNamingFlag) {
  EXPECT_ERROR_CONTAINS(ResolveHostKind("bogus"),
                        "--host-kind: expected auto, pvm or hardware, got 'bogus'");
  EXPECT_ERROR_CONTAINS(ResolveHostKind("PVM"), "got 'PVM'");
}

TEST(HostKind, Names) {
  EXPECT_STREQ(HostKindName(HostKind::kPvm), "pvm");
  EXPECT_STREQ(HostKindName(HostKind::kHardware), "hardware");
}

Cmdline WithHostParams(HostKind kind, std::string_view boot_args) {
  Cmdline cmdline(2048);
  EXPECT_OK(cmdline.Append(boot_args));
  EXPECT_OK(AddHostKernelParams(kind, cmdline));
  return cmdline;
}

TEST(HostKind, PvmHostAddsItsKernelParams) {
  EXPECT_EQ(WithHostParams(HostKind::kPvm, "console=ttyS0").str(),
            "console=ttyS0 noxsave clearcpuid=141,151,308 clocksource=kvm-clock");
  EXPECT_EQ(WithHostParams(HostKind::kHardware, "console=ttyS0").str(), "console=ttyS0");
}

// Each group is left out when the user's boot_args already decide it.
TEST(HostKind, UsersOwnParamsWin) {
  EXPECT_EQ(WithHostParams(HostKind::kPvm, "console=ttyS0 clocksource=tsc").str(),
            "console=ttyS0 clocksource=tsc noxsave clearcpuid=141,151,308");
  EXPECT_EQ(WithHostParams(HostKind::kPvm, "noxsave").str(), "noxsave clocksource=kvm-clock");
  EXPECT_EQ(WithHostParams(HostKind::kPvm, "clearcpuid=1 clocksource=hpet").str(),
            "clearcpuid=1 clocksource=hpet");
}

TEST(HostKind, AdditionsThatDoNotFitAreAnError) {
  Cmdline cmdline(40);
  ASSERT_OK(cmdline.Append("console=ttyS0"));
  Status s = AddHostKernelParams(HostKind::kPvm, cmdline);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace hearth
