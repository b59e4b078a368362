#include "base/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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

TEST(Log, LevelFiltersMessages) {
  SetLogLevel(LogLevel::kInfo);
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarning));
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo));
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  SetLogLevel(LogLevel::kError);
  EXPECT_FALSE(LogEnabled(LogLevel::kWarning));
  SetLogLevel(LogLevel::kWarning);  // The default, for the other tests.
}

TEST(Log, WritesFormattedLineToLogPath) {
  unit::TempDir dir;
  std::string path = dir.File("hearth.log");
  ASSERT_OK(SetLogPath(path));
  SetLogInstanceId("vm-7");
  SetLogLevel(LogLevel::kInfo);
  std::thread worker([] {
    SetThreadName("fc_vcpu 0");
    LOG_INFO("booted in " << 42 << " ms");
    LOG_DEBUG("not shown");
  });
  worker.join();
  SetLogLevel(LogLevel::kWarning);
  SetLogInstanceId("anonymous-instance");
  EXPECT_OK(SetLogPath("/dev/stderr"));  // Not the temp file, which is about to go.

  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string log = text.str();
  EXPECT_THAT(log, ::testing::HasSubstr(" [vm-7:fc_vcpu 0:INFO] booted in 42 ms\n"));
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("not shown")));
  // "YYYY-MM-DDTHH:MM:SS.mmm " prefix.
  ASSERT_GE(log.size(), 24u);
  EXPECT_EQ(log[4], '-');
  EXPECT_EQ(log[10], 'T');
  EXPECT_EQ(log[19], '.');
  EXPECT_EQ(log[23], ' ');
}

TEST(Log, SetLogPathErrorNamesPath) {
  EXPECT_ERROR_CONTAINS(SetLogPath("/nonexistent/dir/hearth.log"),
                        "open /nonexistent/dir/hearth.log: No such file or directory");
}

}  // namespace
}  // namespace hearth
