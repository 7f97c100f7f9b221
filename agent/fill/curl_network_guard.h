#pragma once
// The one place a NetworkPolicy (address_policy.h) is installed on a curl easy handle. Every
// curl handle the agent makes for a source goes through Install: the blocking listing and
// HEAD requests (blocking_http.h) and the range GETs of the fill (http_chunk_fetcher.cc).
//
// curl calls the guard's CURLOPT_OPENSOCKETFUNCTION for each connection it opens, with the
// address it is about to connect to, after DNS and for every redirect hop: a refused address
// gets no socket (curl fails the transfer, CURLE_COULDNT_CONNECT) and the guard keeps the
// refusal, which the caller reports instead of curl's error. With an enforced policy curl
// also ignores proxy variables (http_proxy, ...): through a proxy the address connected to
// would be the proxy's, not the origin's.
#include <curl/curl.h>

#include <string>

#include "absl/status/status.h"
#include "agent/fill/address_policy.h"

namespace modelcache {

class CurlNetworkGuard {
 public:
  CurlNetworkGuard() = default;
  ~CurlNetworkGuard();
  // curl keeps a pointer to the guard: it must neither move nor die before the handle's
  // transfers end.
  CurlNetworkGuard(const CurlNetworkGuard&) = delete;
  CurlNetworkGuard& operator=(const CurlNetworkGuard&) = delete;

  // Sets the socket callback, network.resolve pins and the proxy rule on `easy`. Call once per
  // guard, before the transfer starts. `policy` is copied. INTERNAL when curl refuses an option.
  absl::Status Install(CURL* easy, const NetworkPolicy& policy);

  // OK, or PERMISSION_DENIED when a connection was refused: the message names the host, the
  // address, the range that refused it and the key that would allow it. Read it after the
  // transfer ended (on the thread that ran it), and only when it failed: curl may have
  // connected to another address of the same name after one was refused.
  const absl::Status& Refusal() const { return refusal_; }

 private:
  static curl_socket_t OnOpenSocket(void* user, curlsocktype purpose, struct curl_sockaddr* address);

  CURL* easy_ = nullptr;
  NetworkPolicy policy_;
  curl_slist* resolve_ = nullptr;
  absl::Status refusal_;
};

}  // namespace modelcache
