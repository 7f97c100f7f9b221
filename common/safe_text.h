#pragma once
// Text that came from outside (a source URI, a manifest's bytes, an origin's answer) made fit
// for a log line or an error message: valid UTF-8, on one line, of bounded length. A log
// consumer that parses JSON lines rejects a line with a stray 0xff byte, and a 1 MB value
// drowns the log, so both are handled once, here, for common/log_fields and common/logging.
#include <cstddef>
#include <string>
#include <string_view>

namespace modelcache {

// The longest value LogFields writes whole; longer ones are cut (CutText).
inline constexpr size_t kMaxLoggedValueBytes = 4096;

// Bytes of the well-formed UTF-8 sequence that starts at text[pos] (1 to 4: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
// Requires pos < text.size().
size_t Utf8SequenceLength(std::string_view text, size_t pos);

// What EscapeUnsafeBytes does with a backslash: kEscape writes "\\", so that the result reads
// back without doubt (a quoted log value); kKeep leaves it (a whole log line, whose quoted
// values are escaped already).
enum class Backslash { kEscape, kKeep };

// `text` with every byte that is not part of valid UTF-8, and every control character
// (below 0x20, and 0x7f), written as the four characters \xNN (hex, lowercase); \n, \r and
// \t are written as those two-character escapes. Valid multi-byte characters are kept as
// they are.
std::string EscapeUnsafeBytes(std::string_view text, Backslash backslash = Backslash::kEscape);

// `text` when it has at most `max_bytes` bytes; otherwise its first bytes (cut before a
// UTF-8 sequence, never inside one) followed by "...[cut: N bytes in all]", the whole at
// most max_bytes plus that marker.
std::string CutText(std::string_view text, size_t max_bytes);

// As CutText, but keeps the start and the end (an error message names the thing first and
// the cause last): "<head>...[cut: N bytes in all]...<tail>".
std::string CutTextMiddle(std::string_view text, size_t max_bytes);

}  // namespace modelcache
