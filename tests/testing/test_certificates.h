#pragma once
// Test certificates made by openssl for one test: a CA, a server certificate for 127.0.0.1
// and localhost, and a client certificate (CN "client", O "modelcache-test"), all signed by
// the CA and valid for a day. Files: ca.pem, ca.key, server.pem, server.key, client.pem,
// client.key, in a temp dir removed with the object.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

class TestCertificates {
 public:
  // Makes them; records a test failure (quoting openssl's log) if it cannot.
  TestCertificates();
  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

  std::string Path(const std::string& name) const { return dir_.Join(name); }
  std::string Read(const std::string& name) const;

 private:
  absl::Status Run(std::vector<std::string> args);

  TempDir dir_;
  absl::Status status_;
};

}  // namespace modelcache::testing
