#include "common/safe_text.h"

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

bool IsContinuation(unsigned char byte) { return (byte & 0xc0) == 0x80; }

// Moves `end` back to the start of the UTF-8 sequence it falls in, if any.
size_t SequenceBoundaryAtOrBefore(std::string_view text, size_t end) {
  size_t back = 0;
  while (end > 0 && back < 3 && end < text.size() &&
         IsContinuation(static_cast<unsigned char>(text[end]))) {
    --end;
    ++back;
  }
  return end;
}

// Moves `start` forward past continuation bytes, to the start of the next sequence.
size_t SequenceBoundaryAtOrAfter(std::string_view text, size_t start) {
  size_t forward = 0;
  while (start < text.size() && forward < 3 &&
         IsContinuation(static_cast<unsigned char>(text[start]))) {
    ++start;
    ++forward;
  }
  return start;
}

std::string CutMarker(size_t total) { return fmt::format("...[cut: {} bytes in all]", total); }

}  // namespace

size_t Utf8SequenceLength(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const unsigned char first = byte(0);
  if (first < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;   // the second byte's range, narrowed for the lead bytes that
  unsigned char high = 0xbf;  // would otherwise allow overlong forms or surrogates
  if (first >= 0xc2 && first <= 0xdf) {
    length = 2;
  } else if (first >= 0xe0 && first <= 0xef) {
    length = 3;
    if (first == 0xe0) low = 0xa0;
    if (first == 0xed) high = 0x9f;
  } else if (first >= 0xf0 && first <= 0xf4) {
    length = 4;
    if (first == 0xf0) low = 0x90;
    if (first == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (pos + length > text.size()) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (!IsContinuation(byte(i))) return 0;
  }
  return length;
}

std::string EscapeUnsafeBytes(std::string_view text, Backslash backslash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const auto c = static_cast<unsigned char>(text[pos]);
    const size_t length = Utf8SequenceLength(text, pos);
    if (length > 1) {
      out.append(text.substr(pos, length));
      pos += length;
      continue;
    }
    ++pos;
    switch (c) {
      case '\\':
        out += backslash == Backslash::kEscape ? "\\\\" : "\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (length == 1 && c >= 0x20 && c != 0x7f) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    out += "\\x";
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

std::string CutText(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::string out(text.substr(0, SequenceBoundaryAtOrBefore(text, max_bytes)));
  out += CutMarker(text.size());
  return out;
}

std::string CutTextMiddle(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  const size_t head = SequenceBoundaryAtOrBefore(text, max_bytes / 2);
  const size_t tail = SequenceBoundaryAtOrAfter(text, text.size() - (max_bytes - max_bytes / 2));
  std::string out(text.substr(0, head));
  out += CutMarker(text.size());
  out += "...";
  out.append(text.substr(tail));
  return out;
}

}  // namespace modelcache
