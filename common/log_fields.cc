#include "common/log_fields.h"

#include <cmath>

#include "common/safe_text.h"

namespace modelcache {
namespace {

bool IsKeyStart(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }
bool IsKeyChar(char c) { return IsKeyStart(c) || (c >= '0' && c <= '9'); }

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (size_t pos = 0; pos < value.size(); ++pos) {
    const auto c = static_cast<unsigned char>(value[pos]);
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
    if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(value, pos);
      if (length == 0) return true;  // not UTF-8: written as \xNN in quotes
      pos += length - 1;
    }
  }
  return false;
}

// Quotes and escapes: \" \\ \n \r \t, and \xNN for a control character or a byte that is not
// UTF-8 (a bad manifest's raw bytes), so that the line stays valid UTF-8 (common/safe_text.h).
void AppendQuoted(std::string_view value, std::string& out) {
  out += '"';
  for (char c : EscapeUnsafeBytes(value)) {
    if (c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  out += '"';
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses `key=value` at `pos`; on success moves `pos` past it and appends to `fields`.
bool ParseField(std::string_view message, size_t& pos,
                std::vector<std::pair<std::string, std::string>>& fields) {
  size_t key_start = pos;
  if (pos >= message.size() || !IsKeyStart(message[pos])) return false;
  while (pos < message.size() && IsKeyChar(message[pos])) ++pos;
  if (pos >= message.size() || message[pos] != '=') return false;
  std::string key(message.substr(key_start, pos - key_start));
  ++pos;
  std::string value;
  if (pos < message.size() && message[pos] == '"') {
    ++pos;
    bool closed = false;
    while (pos < message.size()) {
      char c = message[pos++];
      if (c == '"') {
        closed = true;
        break;
      }
      if (c != '\\') {
        value += c;
        continue;
      }
      if (pos >= message.size()) return false;
      char escaped = message[pos++];
      switch (escaped) {
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'x': {
          if (pos + 2 > message.size()) return false;
          const int high = HexDigit(message[pos]);
          const int low = HexDigit(message[pos + 1]);
          if (high < 0 || low < 0) return false;
          value += static_cast<char>(high * 16 + low);
          pos += 2;
          break;
        }
        default:
          value += escaped;
      }
    }
    if (!closed) return false;
  } else {
    size_t end = message.find(' ', pos);
    if (end == std::string_view::npos) end = message.size();
    if (end == pos) return false;
    value = std::string(message.substr(pos, end - pos));
    pos = end;
  }
  fields.emplace_back(std::move(key), std::move(value));
  return true;
}

// Whether message[start..] is nothing but space-separated fields.
bool ParseTail(std::string_view message, size_t start,
               std::vector<std::pair<std::string, std::string>>& fields) {
  size_t pos = start;
  while (pos < message.size()) {
    if (!ParseField(message, pos, fields)) return false;
    if (pos == message.size()) break;
    if (message[pos] != ' ') return false;
    ++pos;
    if (pos == message.size()) return false;  // a trailing space
  }
  return !fields.empty();
}

}  // namespace

LogFields& LogFields::Add(std::string_view key, std::string_view value) {
  // A 1 MB source URI or origin answer must not become a 1 MB log line.
  std::string cut;
  if (value.size() > kMaxLoggedValueBytes) {
    cut = CutText(value, kMaxLoggedValueBytes);
    value = cut;
  }
  if (!text_.empty()) text_ += ' ';
  text_.append(key);
  text_ += '=';
  if (NeedsQuotes(value)) {
    AppendQuoted(value, text_);
  } else {
    text_.append(value);
  }
  return *this;
}

LogFields& LogFields::Add(std::string_view key, const absl::Status& status) {
  return Add(key, std::string_view(status.ToString()));
}

LogFields& LogFields::AddMillis(std::string_view key, double seconds) {
  return Add(key, static_cast<int64_t>(std::llround(seconds * 1000)));
}

SplitLogMessage SplitLogFields(std::string_view message) {
  SplitLogMessage split{message, {}};
  if (message.find('=') == std::string_view::npos) return split;
  // The first position after a space from which the rest is all fields. A field value never
  // contains an unquoted space, so later starts cannot give a longer tail.
  for (size_t pos = 0; pos < message.size(); ++pos) {
    if (pos > 0 && message[pos - 1] != ' ') continue;
    if (!IsKeyStart(message[pos])) continue;
    std::vector<std::pair<std::string, std::string>> fields;
    if (!ParseTail(message, pos, fields)) continue;
    split.text = message.substr(0, pos > 0 ? pos - 1 : 0);
    split.fields = std::move(fields);
    return split;
  }
  return split;
}

}  // namespace modelcache
