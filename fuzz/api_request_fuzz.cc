// The REST API's request parser: method, path and body as a client sends them. The input is
// "METHOD PATH\n" followed by the body, so the seeds read like requests.
#include <string_view>

#include "api/request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t eol = input.find('\n');
  std::string_view line = input.substr(0, eol);
  std::string_view body = eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
  size_t space = line.find(' ');
  std::string_view method = line.substr(0, space);
  std::string_view path = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  auto action = hearth::ParseApiRequest(method, path, body);
  (void)action;
  return 0;
}
