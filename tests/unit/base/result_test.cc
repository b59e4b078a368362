#include "base/result.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "test_util.h"

namespace hearth {
namespace {

using ::testing::HasSubstr;

Result<int> Half(int v) {
  if (v % 2 != 0) return Error(std::to_string(v) + " is odd");
  return v / 2;
}

Status CheckEven(int v) {
  if (v % 2 != 0) return Error("odd");
  return Ok();
}

// Propagates through ASSIGN_OR_RETURN twice; `steps` counts how far it got.
Result<int> Quarter(int v, int& steps) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ++steps;
  ASSIGN_OR_RETURN(int q, Half(h));
  ++steps;
  return q;
}

Status BothEven(int a, int b, int& checked) {
  RETURN_IF_ERROR(CheckEven(a));
  ++checked;
  RETURN_IF_ERROR(CheckEven(b));
  ++checked;
  return Ok();
}

TEST(Result, HoldsValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(*good, 7);
  EXPECT_EQ(good.value(), 7);

  Result<int> bad = Error("boom");
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().message(), "boom");
}

TEST(Result, ArrowReachesMembers) {
  Result<std::string> s = std::string("hello");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 5u);
}

TEST(Result, MovesOutMoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(42);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 42);
}

TEST(Error, WrapPrefixesContext) {
  Error e = Error("bad magic").Wrap("kernel /x");
  EXPECT_EQ(e.message(), "kernel /x: bad magic");
  EXPECT_EQ(e.Wrap("boot").message(), "boot: kernel /x: bad magic");
}

TEST(Error, ErrnoErrorNamesCallAndReason) {
  Error e = ErrnoError("open /nope", ENOENT);
  EXPECT_EQ(e.message(), "open /nope: No such file or directory");
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(Ok().ok());
  Status bad = Error("nope");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "nope");
}

TEST(AssignOrReturn, AssignsValuesAndContinues) {
  int steps = 0;
  auto r = Quarter(20, steps);
  ASSERT_OK(r);
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(steps, 2);
}

TEST(AssignOrReturn, ReturnsFirstErrorAndStops) {
  int steps = 0;
  auto r = Quarter(7, steps);
  EXPECT_ERROR_CONTAINS(r, "7 is odd");
  EXPECT_EQ(steps, 0);

  steps = 0;
  auto r2 = Quarter(10, steps);  // 10 -> 5, then 5 is odd.
  EXPECT_ERROR_CONTAINS(r2, "5 is odd");
  EXPECT_EQ(steps, 1);
}

TEST(ReturnIfError, StopsAtFirstFailure) {
  int checked = 0;
  EXPECT_OK(BothEven(2, 4, checked));
  EXPECT_EQ(checked, 2);

  checked = 0;
  Status s = BothEven(2, 3, checked);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "odd");
  EXPECT_EQ(checked, 1);

  checked = 0;
  EXPECT_FALSE(BothEven(1, 2, checked).ok());
  EXPECT_EQ(checked, 0);
}

TEST(ReturnIfError, AcceptsResultOfValue) {
  auto f = [](int v) -> Status {
    RETURN_IF_ERROR(Half(v));
    return Ok();
  };
  EXPECT_TRUE(f(4).ok());
  Status s = f(3);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("3 is odd"));
}

}  // namespace
}  // namespace hearth
