#include "boot/cmdline.h"

namespace hearth {

Status Cmdline::CheckLength() const {
  if (text_.size() + 1 > capacity_) {
    return Error("kernel command line is " + std::to_string(text_.size()) +
                 " bytes; the kernel accepts at most " + std::to_string(capacity_ - 1));
  }
  return Ok();
}

Status Cmdline::Append(std::string_view words) {
  // Trim surrounding spaces so joining never produces empty words.
  size_t b = words.find_first_not_of(' ');
  if (b == std::string_view::npos) return Ok();
  size_t e = words.find_last_not_of(' ');
  words = words.substr(b, e - b + 1);
  for (char c : words) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return Error("kernel command line contains a control or NUL character");
    }
  }
  std::string next = text_;
  if (!next.empty()) next.push_back(' ');
  next.append(words);
  if (next.size() + 1 > capacity_) {
    return Error("kernel command line would be " + std::to_string(next.size()) +
                 " bytes; the kernel accepts at most " + std::to_string(capacity_ - 1));
  }
  text_ = std::move(next);
  return Ok();
}

bool Cmdline::HasParam(std::string_view key) const {
  std::string_view rest = text_;
  while (!rest.empty()) {
    size_t end = rest.find(' ');
    std::string_view word = rest.substr(0, end);
    if (word == key || (word.size() > key.size() && word.substr(0, key.size()) == key &&
                        word[key.size()] == '=')) {
      return true;
    }
    if (end == std::string_view::npos) break;
    rest = rest.substr(end + 1);
  }
  return false;
}

}  // namespace hearth
