#include "base/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace hearth {
namespace {

TEST(ParseLogLevel, AcceptsFirecrackerNamesAnyCase) {
  struct Case {
    const char* name;
    LogLevel level;
  } cases[] = {
      {"Error", LogLevel::kError},   {"error", LogLevel::kError}, {"Off", LogLevel::kError},
      {"Warning", LogLevel::kWarning}, {"WARN", LogLevel::kWarning},
      {"Info", LogLevel::kInfo},     {"INFO", LogLevel::kInfo},
      {"Debug", LogLevel::kDebug},   {"Trace", LogLevel::kDebug},
  };
  for (const auto& c : cases) {
    auto level = ParseLogLevel(c.name);
    ASSERT_OK(level);
    EXPECT_EQ(*level, c.level) << c.name;
  }
}

TEST(ParseLogLevel, RejectsUnknownNamingIt) {
  EXPECT_ERROR_CONTAINS(ParseLogLevel("verbose"), "unknown log level 'verbose'");
  EXPECT_ERROR_CONTAINS(ParseLogLevel(""), "unknown log level ''");
}

}  // namespace
}  // namespace hearth
