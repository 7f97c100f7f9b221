#include "agent/fill/address_policy.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "absl/status/status.h"

namespace modelcache {
namespace {

// ::ffff:0:0/96 (IPv4-mapped) and 64:ff9b::/96 (NAT64's well-known prefix) carry an IPv4
// address in their last 4 bytes.
constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr std::array<uint8_t, 12> kNat64Prefix = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

std::array<uint8_t, 16> MappedFromIpv4(const uint8_t (&ipv4)[4]) {
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), kMappedPrefix.data(), kMappedPrefix.size());
  std::memcpy(out.data() + 12, ipv4, 4);
  return out;
}

bool HasPrefix(const std::array<uint8_t, 16>& address, const std::array<uint8_t, 12>& prefix) {
  return std::memcmp(address.data(), prefix.data(), prefix.size()) == 0;
}

// The form ranges are compared in: NAT64 addresses become the IPv4-mapped address they carry.
std::array<uint8_t, 16> Canonical(std::array<uint8_t, 16> address) {
  if (HasPrefix(address, kNat64Prefix)) std::memcpy(address.data(), kMappedPrefix.data(), 12);
  return address;
}

bool Contains(const IpRange& range, const std::array<uint8_t, 16>& address) {
  int bits = range.prefix_length;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((address[i] & mask) != (range.network[i] & mask)) return false;
  }
  return true;
}

std::string AddressText(const std::array<uint8_t, 16>& address, bool ipv4) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ipv4) {
    inet_ntop(AF_INET, address.data() + 12, text, sizeof(text));
  } else {
    inet_ntop(AF_INET6, address.data(), text, sizeof(text));
  }
  return text;
}

IpRange BuiltIn(std::string_view text, std::string_view label) {
  absl::StatusOr<IpRange> range = ParseIpRange(text);
  // The table below is fixed; a typo in it is a programming error caught by the unit tests.
  IpRange out = range.ok() ? *std::move(range) : IpRange{};
  out.label = std::string(label);
  return out;
}

const IpRange* FirstContaining(const std::vector<IpRange>& ranges, const std::array<uint8_t, 16>& address) {
  for (const IpRange& range : ranges) {
    if (Contains(range, address)) return &range;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<IpRange> ParseIpRange(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("\"{}\": {}", text, why));
  };
  const size_t slash = text.find('/');
  const std::string address_text(text.substr(0, slash));
  IpRange range;
  bool ipv4 = false;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, address_text.c_str(), &v4) == 1) {
    ipv4 = true;
    uint8_t bytes[4];
    std::memcpy(bytes, &v4, 4);
    range.network = MappedFromIpv4(bytes);
  } else if (inet_pton(AF_INET6, address_text.c_str(), &v6) == 1) {
    std::memcpy(range.network.data(), &v6, 16);
  } else {
    return invalid("not an IPv4 or IPv6 address (want e.g. 10.0.0.0/8 or fd00::/8)");
  }
  const int max_length = ipv4 ? 32 : 128;
  int length = max_length;
  if (slash != std::string_view::npos) {
    const std::string_view length_text = text.substr(slash + 1);
    const auto [end, error] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (length_text.empty() || error != std::errc() || end != length_text.data() + length_text.size() ||
        length < 0 || length > max_length) {
      return invalid(fmt::format("prefix length must be 0..{}", max_length));
    }
  }
  range.prefix_length = ipv4 ? length + 96 : length;
  IpRange network_only = range;
  for (int bit = range.prefix_length; bit < 128; ++bit) {
    network_only.network[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (network_only.network != range.network) {
    return invalid(fmt::format("address bits set beyond the /{} prefix (did you mean {}/{}?)", length,
                               AddressText(network_only.network, ipv4), length));
  }
  range.text = fmt::format("{}/{}", AddressText(range.network, ipv4), length);
  return range;
}

std::span<const IpRange> BuiltInDeniedRanges() {
  static const std::vector<IpRange> kRanges = {
      BuiltIn("0.0.0.0/8", "this host"),
      BuiltIn("127.0.0.0/8", "loopback"),
      BuiltIn("169.254.0.0/16", "link-local, cloud metadata"),
      BuiltIn("100.100.100.200/32", "cloud metadata (Alibaba Cloud)"),
      BuiltIn("168.63.129.16/32", "cloud host services (Azure WireServer)"),
      BuiltIn("::/128", "this host"),
      BuiltIn("::1/128", "loopback"),
      BuiltIn("fe80::/10", "link-local"),
      BuiltIn("fd00:ec2::254/128", "cloud metadata (AWS, IPv6)"),
      BuiltIn("fd20:ce::254/128", "cloud metadata (Google Cloud, IPv6)"),
  };
  return kRanges;
}

AddressDecision Decide(const struct sockaddr* address, size_t length, const NetworkPolicy& policy) {
  AddressDecision decision;
  std::array<uint8_t, 16> bytes{};
  bool ipv4 = false;
  if (address != nullptr && address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof(in));
    uint8_t raw[4];
    std::memcpy(raw, &in.sin_addr, 4);
    bytes = MappedFromIpv4(raw);
    ipv4 = true;
  } else if (address != nullptr && address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof(in6));
    std::memcpy(bytes.data(), &in6.sin6_addr, 16);
  } else {
    decision.address = address == nullptr ? "none" : fmt::format("family {}", address->sa_family);
    decision.allowed = !policy.enforced;
    decision.reason = "not an IPv4 or IPv6 address";
    return decision;
  }
  decision.address = AddressText(bytes, ipv4);
  if (!policy.enforced) {
    decision.allowed = true;
    return decision;
  }
  const std::array<uint8_t, 16> canonical = Canonical(bytes);
  if (const IpRange* allowed = FirstContaining(policy.allow, canonical)) {
    decision.allowed = true;
    decision.reason = "network.allow " + allowed->text;
    return decision;
  }
  for (const IpRange& range : BuiltInDeniedRanges()) {
    if (Contains(range, canonical)) {
      decision.reason = fmt::format("{} ({})", range.text, range.label);
      return decision;
    }
  }
  if (const IpRange* denied = FirstContaining(policy.deny, canonical)) {
    decision.reason = "network.deny " + denied->text;
    return decision;
  }
  decision.allowed = true;
  return decision;
}

absl::Status ValidateResolveEntry(std::string_view entry) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\": {} (want HOST:PORT:ADDRESS[,ADDRESS], e.g. models.internal:443:10.0.0.5)",
                    entry, why));
  };
  const size_t first = entry.find(':');
  if (first == std::string_view::npos || first == 0) return invalid("no host");
  const size_t second = entry.find(':', first + 1);
  if (second == std::string_view::npos) return invalid("no port");
  const std::string_view port = entry.substr(first + 1, second - first - 1);
  unsigned port_number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || port_number == 0 ||
      port_number > 65535) {
    return invalid("port must be 1..65535");
  }
  std::string_view addresses = entry.substr(second + 1);
  if (addresses.empty()) return invalid("no address");
  while (!addresses.empty()) {
    const size_t comma = addresses.find(',');
    std::string_view one = addresses.substr(0, comma);
    if (one.size() >= 2 && one.front() == '[' && one.back() == ']') one = one.substr(1, one.size() - 2);
    const std::string text(one);
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, text.c_str(), &v4) != 1 && inet_pton(AF_INET6, text.c_str(), &v6) != 1) {
      return invalid(fmt::format("\"{}\" is not an IP address", one));
    }
    if (comma == std::string_view::npos) break;
    addresses.remove_prefix(comma + 1);
  }
  return absl::OkStatus();
}

}  // namespace modelcache
