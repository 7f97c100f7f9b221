#pragma once
// RFC 3986 percent-encoding, the one copy the URI parsers and the sources share.
#include <string>
#include <string_view>

namespace modelcache {

// 0..15 for a hex digit (either case), -1 for anything else.
int HexValue(char c);
// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
bool IsUnreservedUriChar(char c);
// "%xx" decoded; a '%' not followed by two hex digits stays as it is.
std::string PercentDecode(std::string_view text);
// Everything but the unreserved characters encoded, "%XX" in upper case.
std::string PercentEncode(std::string_view text);

}  // namespace modelcache
