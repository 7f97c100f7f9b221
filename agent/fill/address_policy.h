#pragma once
// Which network addresses the agent may fetch from. Every http(s) and s3 request the agent
// makes (listings, HEADs, range GETs, each redirect hop) connects only to an address this
// policy allows; curl_network_guard.h applies it to a curl handle, at the moment curl opens
// the socket, so the address checked is the one connected to (after DNS: a name that
// rebinds between two lookups cannot slip through).
//
// Refused unless network.allow names them (the built-in ranges, BuiltInDeniedRanges()):
//   0.0.0.0/8, ::/128         "this host": connecting there reaches the node itself
//   127.0.0.0/8, ::1/128      loopback: services on the node
//   169.254.0.0/16, fe80::/10 link-local, which holds the cloud metadata endpoint
//   fd00:ec2::254, fd20:ce::254, 100.100.100.200, 168.63.129.16   cloud metadata and host services
// plus the ranges in network.deny. An address in a network.allow range is allowed even when
// a denied range holds it too. IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
// addresses are judged as the IPv4 address they carry.
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace modelcache {

// A CIDR range ("10.0.0.0/8", "fe80::/10"; a bare address is /32 or /128).
struct IpRange {
  std::array<uint8_t, 16> network{};  // IPv4 as ::ffff:a.b.c.d, so both families compare alike
  int prefix_length = 0;              // over the 128 bits (an IPv4 /8 is 104 here)
  std::string text;                   // as written, normalized ("10.0.0.0/8")
  std::string label;                  // why it is listed ("loopback"); empty for the operator's
};

// INVALID_ARGUMENT names the text and what is wrong with it. Host bits set below the prefix
// ("10.1.2.3/8") are refused: the operator likely meant something else.
absl::StatusOr<IpRange> ParseIpRange(std::string_view text);

struct NetworkPolicy {
  // false: every address is allowed (modelcachectl's local fill, which runs with its
  // caller's own network access). The agent always enforces.
  bool enforced = true;
  std::vector<IpRange> allow;  // network.allow
  std::vector<IpRange> deny;   // network.deny, on top of the built-in ranges
  // network.resolve: "HOST:PORT:ADDRESS[,ADDRESS]" entries that pin a name to addresses
  // (curl's CURLOPT_RESOLVE), e.g. for names the node's DNS does not know. The pinned
  // addresses are checked like any other.
  std::vector<std::string> resolve;
};

struct AddressDecision {
  bool allowed = false;
  std::string address;  // as connected to: "169.254.169.254", "::ffff:127.0.0.1"
  // The range that decided: "127.0.0.0/8 (loopback)", "network.deny 10.0.0.0/8",
  // "network.allow 127.0.0.1/32"; "" when none matched (allowed) or the family is not IP.
  std::string reason;
};

// Pure. `length` is the size of the sockaddr at `address` (sockaddr_in or sockaddr_in6);
// anything that is not an IPv4 or IPv6 address is refused.
AddressDecision Decide(const struct sockaddr* address, size_t length, const NetworkPolicy& policy);

// The ranges refused by default, with their labels.
std::span<const IpRange> BuiltInDeniedRanges();

// Validates one network.resolve entry ("HOST:PORT:ADDRESS[,ADDRESS...]"; an IPv6 address in
// brackets); INVALID_ARGUMENT names the entry.
absl::Status ValidateResolveEntry(std::string_view entry);

}  // namespace modelcache
