#include "vmm/host_kind.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hearth
