#include "agent/fill/address_policy.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

// The decision for a textual address, through a real sockaddr as curl hands it over.
AddressDecision DecideText(const std::string& text, const NetworkPolicy& policy) {
  sockaddr_in v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(80);
    return Decide(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4), policy);
  }
  sockaddr_in6 v6{};
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &v6.sin6_addr), 1) << text;
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(80);
  return Decide(reinterpret_cast<const sockaddr*>(&v6), sizeof(v6), policy);
}

NetworkPolicy WithRanges(std::initializer_list<const char*> allow, std::initializer_list<const char*> deny) {
  NetworkPolicy policy;
  for (const char* text : allow) policy.allow.push_back(*ParseIpRange(text));
  for (const char* text : deny) policy.deny.push_back(*ParseIpRange(text));
  return policy;
}

TEST(AddressPolicy, BuiltInTableParses) {
  for (const IpRange& range : BuiltInDeniedRanges()) {
    EXPECT_FALSE(range.text.empty()) << range.label;
    EXPECT_FALSE(range.label.empty()) << range.text;
  }
  EXPECT_GE(BuiltInDeniedRanges().size(), 10u);
}

TEST(AddressPolicy, RefusesLoopbackLinkLocalAndMetadataByDefault) {
  const NetworkPolicy policy;
  for (const char* address : {"127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254", "169.254.170.2",
                              "100.100.100.200", "168.63.129.16", "::1", "::", "fe80::1",
                              "febf::1", "fd00:ec2::254", "fd20:ce::254"}) {
    const AddressDecision decision = DecideText(address, policy);
    EXPECT_FALSE(decision.allowed) << address;
    EXPECT_FALSE(decision.reason.empty()) << address;
  }
  EXPECT_THAT(DecideText("127.0.0.1", policy).reason, HasSubstr("127.0.0.0/8 (loopback)"));
  EXPECT_THAT(DecideText("169.254.169.254", policy).reason, HasSubstr("169.254.0.0/16"));
  EXPECT_THAT(DecideText("fe80::1", policy).reason, HasSubstr("fe80::/10 (link-local)"));
}

TEST(AddressPolicy, AllowsOrdinaryAddressesByDefault) {
  const NetworkPolicy policy;
  for (const char* address : {"10.0.0.5", "192.168.1.1", "52.216.8.1", "128.0.0.1", "169.255.0.1",
                              "2600:1f18::1", "fec0::1", "fd00:ec2::253"}) {
    const AddressDecision decision = DecideText(address, policy);
    EXPECT_TRUE(decision.allowed) << address << ": " << decision.reason;
    EXPECT_EQ(decision.address, address);
  }
}

TEST(AddressPolicy, Ipv4MappedAndNat64AddressesAreJudgedAsTheirIpv4) {
  const NetworkPolicy policy;
  for (const char* address : {"::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                              "64:ff9b::127.0.0.1"}) {
    const AddressDecision decision = DecideText(address, policy);
    EXPECT_FALSE(decision.allowed) << address;
  }
  EXPECT_EQ(DecideText("::ffff:127.0.0.1", policy).address, "::ffff:127.0.0.1");
  EXPECT_TRUE(DecideText("::ffff:10.1.2.3", policy).allowed);
  EXPECT_TRUE(DecideText("::ffff:127.0.0.1", WithRanges({"127.0.0.1/32"}, {})).allowed);
}

TEST(AddressPolicy, AllowListWinsOverBuiltInAndOperatorDenies) {
  const NetworkPolicy policy = WithRanges({"127.0.0.1/32", "10.1.0.0/16"}, {"10.0.0.0/8"});
  AddressDecision loopback = DecideText("127.0.0.1", policy);
  EXPECT_TRUE(loopback.allowed);
  EXPECT_EQ(loopback.reason, "network.allow 127.0.0.1/32");
  EXPECT_FALSE(DecideText("127.0.0.2", policy).allowed) << "only the /32 is allowed";
  EXPECT_FALSE(DecideText("::1", policy).allowed) << "IPv6 loopback is another address";
  EXPECT_TRUE(DecideText("10.1.2.3", policy).allowed);
  AddressDecision denied = DecideText("10.2.0.1", policy);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, "network.deny 10.0.0.0/8");
}

TEST(AddressPolicy, OperatorDeniesIpv6Ranges) {
  const NetworkPolicy policy = WithRanges({}, {"fd00::/8"});
  EXPECT_FALSE(DecideText("fd12:3456::1", policy).allowed);
  EXPECT_TRUE(DecideText("fc00::1", policy).allowed);
}

TEST(AddressPolicy, NotEnforcedAllowsEverything) {
  NetworkPolicy policy;
  policy.enforced = false;
  EXPECT_TRUE(DecideText("169.254.169.254", policy).allowed);
  EXPECT_TRUE(DecideText("::1", policy).allowed);
}

TEST(AddressPolicy, NonIpFamiliesAndShortSockaddrsAreRefused) {
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  EXPECT_FALSE(Decide(reinterpret_cast<const sockaddr*>(&unix_address), sizeof(unix_address), NetworkPolicy{}).allowed);
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  EXPECT_FALSE(Decide(reinterpret_cast<const sockaddr*>(&v4), 4, NetworkPolicy{}).allowed);
  EXPECT_FALSE(Decide(nullptr, 0, NetworkPolicy{}).allowed);
}

TEST(ParseIpRange, AcceptsCidrAndBareAddresses) {
  auto v4 = ParseIpRange("10.0.0.0/8");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->text, "10.0.0.0/8");
  EXPECT_EQ(v4->prefix_length, 104);
  auto bare = ParseIpRange("169.254.169.254");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->text, "169.254.169.254/32");
  auto v6 = ParseIpRange("FE80::/10");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->text, "fe80::/10");
  auto everything = ParseIpRange("0.0.0.0/0");
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_TRUE(DecideText("8.8.8.8", WithRanges({}, {"0.0.0.0/0"})).allowed == false);
}

TEST(ParseIpRange, RefusesGarbageWithTheTextAndWhy) {
  for (const char* text : {"", "localhost", "10.0.0.0/33", "fe80::/129", "10.0.0.0/", "10.0.0.0/8x",
                           "10.0.0.0/-1", "1.2.3.4.5"}) {
    auto range = ParseIpRange(text);
    EXPECT_EQ(range.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(range.status().message()), HasSubstr(std::string("\"") + text + "\""));
  }
  auto host_bits = ParseIpRange("10.1.2.3/8");
  EXPECT_EQ(host_bits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(host_bits.status().message()), HasSubstr("did you mean 10.0.0.0/8"));
}

TEST(ValidateResolveEntry, AcceptsCurlsFormat) {
  EXPECT_TRUE(ValidateResolveEntry("models.internal:443:10.0.0.5").ok());
  EXPECT_TRUE(ValidateResolveEntry("metadata.test:80:169.254.169.254").ok());
  EXPECT_TRUE(ValidateResolveEntry("h:8080:10.0.0.5,[fd00::5]").ok());
  for (const char* entry : {"", "host", "host:80", "host:80:", "host:0:1.2.3.4", "host:x:1.2.3.4",
                            "host:80:not-an-ip", ":80:1.2.3.4"}) {
    absl::Status status = ValidateResolveEntry(entry);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << entry;
  }
}

}  // namespace
}  // namespace modelcache
