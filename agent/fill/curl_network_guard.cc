#include "agent/fill/curl_network_guard.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <memory>

namespace modelcache {
namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

// The host part of `url` ("" when curl cannot parse it).
std::string HostOf(const char* url) {
  std::unique_ptr<CURLU, UrlDeleter> parsed(curl_url());
  if (!parsed || url == nullptr) return "";
  if (curl_url_set(parsed.get(), CURLUPART_URL, url, 0) != CURLUE_OK) return "";
  char* host = nullptr;
  if (curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK || host == nullptr) return "";
  std::string out(host);
  curl_free(host);
  return out;
}

std::string SuggestedRange(const AddressDecision& decision) {
  const bool ipv6 = decision.address.find(':') != std::string::npos;
  return fmt::format("{}/{}", decision.address, ipv6 ? 128 : 32);
}

}  // namespace

CurlNetworkGuard::~CurlNetworkGuard() { curl_slist_free_all(resolve_); }

absl::Status CurlNetworkGuard::Install(CURL* easy, const NetworkPolicy& policy) {
  easy_ = easy;
  policy_ = policy;
  for (const std::string& entry : policy_.resolve) {
    curl_slist* grown = curl_slist_append(resolve_, entry.c_str());
    if (grown == nullptr) return absl::InternalError("network.resolve: out of memory");
    resolve_ = grown;
  }
  if (resolve_ != nullptr && curl_easy_setopt(easy, CURLOPT_RESOLVE, resolve_) != CURLE_OK) {
    return absl::InternalError("curl refused network.resolve (CURLOPT_RESOLVE)");
  }
  if (!policy_.enforced) return absl::OkStatus();
  if (curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlNetworkGuard::OnOpenSocket) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, this) != CURLE_OK ||
      curl_easy_setopt(easy, CURLOPT_PROXY, "") != CURLE_OK) {
    return absl::InternalError("curl refused the network policy's socket callback");
  }
  return absl::OkStatus();
}

curl_socket_t CurlNetworkGuard::OnOpenSocket(void* user, curlsocktype purpose,
                                             struct curl_sockaddr* address) {
  auto* guard = static_cast<CurlNetworkGuard*>(user);
  try {
    const AddressDecision decision = Decide(&address->addr, address->addrlen, guard->policy_);
    if (decision.allowed && purpose == CURLSOCKTYPE_IPCXN) {
      return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    }
    if (!guard->refusal_.ok()) return CURL_SOCKET_BAD;  // the first refusal names the request
    // During a redirect the effective URL is already the new location: the message names
    // the hop that was refused.
    char* url = nullptr;
    curl_easy_getinfo(guard->easy_, CURLINFO_EFFECTIVE_URL, &url);
    std::string host = HostOf(url);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string resolved =
        host == decision.address ? std::string() : fmt::format(" resolves to {}, which", decision.address);
    guard->refusal_ = absl::PermissionDeniedError(fmt::format(
        "host {}{} is {}: the agent does not fetch from there (set network.allow in the agent's "
        "config to allow it, e.g. network.allow: [\"{}\"]){}",
        host.empty() ? "?" : host, resolved, decision.reason.empty() ? "not allowed" : decision.reason,
        SuggestedRange(decision), url != nullptr ? fmt::format("; refused while connecting for {}", url) : std::string()));
  } catch (...) {
    // No exception may cross into curl; the socket is refused either way.
  }
  return CURL_SOCKET_BAD;
}

}  // namespace modelcache
