#include "boot/cmdline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace hearth {
namespace {

TEST(Cmdline, AppendJoinsWithSingleSpaces) {
  Cmdline c;
  ASSERT_OK(c.Append("console=ttyS0"));
  ASSERT_OK(c.Append("  reboot=k panic=1  "));
  ASSERT_OK(c.Append("quiet"));
  EXPECT_EQ(c.str(), "console=ttyS0 reboot=k panic=1 quiet");
}

TEST(Cmdline, AppendOfBlankIsNoop) {
  Cmdline c;
  ASSERT_OK(c.Append(""));
  ASSERT_OK(c.Append("    "));
  EXPECT_EQ(c.str(), "");
  ASSERT_OK(c.Append("a"));
  ASSERT_OK(c.Append(" "));
  EXPECT_EQ(c.str(), "a");
}

TEST(Cmdline, DefaultCapacityIs2048) {
  Cmdline c;
  EXPECT_EQ(c.capacity(), 2048u);
}

TEST(Cmdline, CapacityCountsTerminatingNul) {
  Cmdline ok(2048);
  ASSERT_OK(ok.Append(std::string(2047, 'a')));
  EXPECT_EQ(ok.str().size(), 2047u);
  EXPECT_OK(ok.CheckLength());

  Cmdline full(2048);
  EXPECT_ERROR_CONTAINS(full.Append(std::string(2048, 'a')),
                        "kernel command line would be 2048 bytes; the kernel accepts at most 2047");
  EXPECT_EQ(full.str(), "");  // A refused append leaves the line unchanged.
}

TEST(Cmdline, CapacityIncludesJoiningSpace) {
  Cmdline c(10);
  ASSERT_OK(c.Append("abcd"));
  // "abcd" + " " + "efgh" = 9 bytes + NUL = 10: fits exactly.
  ASSERT_OK(c.Append("efgh"));
  EXPECT_EQ(c.str(), "abcd efgh");
  EXPECT_ERROR_CONTAINS(c.Append("x"), "would be 11 bytes");
  EXPECT_EQ(c.str(), "abcd efgh");
}

TEST(Cmdline, CheckLengthAfterCapacityShrinks) {
  Cmdline c;
  ASSERT_OK(c.Append(std::string(300, 'x')));
  c.set_capacity(256);
  EXPECT_ERROR_CONTAINS(c.CheckLength(),
                        "kernel command line is 300 bytes; the kernel accepts at most 255");
  c.set_capacity(301);
  EXPECT_OK(c.CheckLength());
}

TEST(Cmdline, RejectsControlCharacters) {
  Cmdline c;
  ASSERT_OK(c.Append("a"));
  for (char bad : {'\n', '\t', '\x01', '\x1f', '\x7f'}) {
    std::string words = std::string("x") + bad + "y";
    EXPECT_ERROR_CONTAINS(c.Append(words), "control or NUL character") << int(bad);
  }
  EXPECT_EQ(c.str(), "a");
}

TEST(Cmdline, RejectsEmbeddedNul) {
  Cmdline c;
  std::string words("root=/dev/vda\0init=/bin/sh", 26);
  EXPECT_ERROR_CONTAINS(c.Append(words), "control or NUL character");
  EXPECT_EQ(c.str(), "");
}

TEST(Cmdline, AcceptsHighBytes) {
  Cmdline c;
  EXPECT_OK(c.Append("name=caf\xc3\xa9"));  // UTF-8 is printable.
}

TEST(Cmdline, HasParamMatchesKeyAndKeyValue) {
  Cmdline c;
  ASSERT_OK(c.Append("console=ttyS0 quiet root=/dev/vda ro"));
  EXPECT_TRUE(c.HasParam("console"));
  EXPECT_TRUE(c.HasParam("quiet"));
  EXPECT_TRUE(c.HasParam("root"));
  EXPECT_TRUE(c.HasParam("ro"));  // Last word.
  EXPECT_FALSE(c.HasParam("panic"));
}

TEST(Cmdline, HasParamAcrossRepeatedSpaces) {
  Cmdline c;
  ASSERT_OK(c.Append("a=1   b  c=3"));
  EXPECT_TRUE(c.HasParam("b"));
  EXPECT_TRUE(c.HasParam("c"));
}

TEST(Cmdline, HasParamIgnoresPrefixMatches) {
  Cmdline c;
  ASSERT_OK(c.Append("consoleX=1 quietly rootfstype=ext4"));
  EXPECT_FALSE(c.HasParam("console"));
  EXPECT_FALSE(c.HasParam("quiet"));
  EXPECT_FALSE(c.HasParam("root"));
  EXPECT_TRUE(c.HasParam("consoleX"));
  EXPECT_TRUE(c.HasParam("rootfstype"));
}

TEST(Cmdline, HasParamDoesNotMatchValues) {
  Cmdline c;
  ASSERT_OK(c.Append("init=quiet"));
  EXPECT_FALSE(c.HasParam("quiet"));
  EXPECT_FALSE(Cmdline().HasParam("init"));
}

}  // namespace
}  // namespace hearth
