#include "tests/testing/test_certificates.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "tests/testing/subprocess.h"

namespace modelcache::testing {

TestCertificates::TestCertificates() {
  status_ = [&]() -> absl::Status {
    absl::Status made = Run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", Path("ca.key"), "-out", Path("ca.pem"), "-days", "1", "-subj", "/CN=test-ca"});
    if (!made.ok()) return made;
    if (!WriteTestFile(dir_.Path() / "san.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")) {
      return absl::InternalError("cannot write san.cnf");
    }
    for (const auto& [who, subject] : std::vector<std::pair<std::string, std::string>>{
             {"server", "/CN=server"}, {"client", "/O=modelcache-test/CN=client"}}) {
      made = Run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                  Path(who + ".key"), "-out", Path(who + ".csr"), "-subj", subject});
      if (!made.ok()) return made;
      made = Run({"x509", "-req", "-in", Path(who + ".csr"), "-CA", Path("ca.pem"), "-CAkey", Path("ca.key"),
                  "-CAcreateserial", "-out", Path(who + ".pem"), "-days", "1", "-extfile", Path("san.cnf")});
      if (!made.ok()) return made;
    }
    return absl::OkStatus();
  }();
  EXPECT_TRUE(status_.ok()) << status_;
}

std::string TestCertificates::Read(const std::string& name) const { return ReadTestFile(Path(name)); }

absl::Status TestCertificates::Run(std::vector<std::string> args) {
  SubprocessOptions options;
  options.argv = {"openssl"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.stderr_path = Path("openssl.log");
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  auto exit = (*process)->WaitExit(std::chrono::seconds(30));
  if (!exit.ok()) return exit.status();
  if (!exit->Success()) {
    return absl::InternalError("openssl " + args[0] + " failed (" + exit->ToString() + "): " + ReadTestFile(Path("openssl.log")));
  }
  return absl::OkStatus();
}

}  // namespace modelcache::testing
