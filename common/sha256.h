#pragma once
// Incremental SHA-256 (OpenSSL EVP, which uses the CPU's SHA instructions when present).
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace modelcache {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(std::span<const std::byte> data);
  // Lowercase hex of the digest; the object must not be updated afterwards.
  std::string FinishHex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Hex digest of a whole file (blocking read).
absl::StatusOr<std::string> Sha256OfFile(const std::filesystem::path& path);

}  // namespace modelcache
