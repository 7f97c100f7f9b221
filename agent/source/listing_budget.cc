#include "agent/source/listing_budget.h"

#include <algorithm>

#include "common/safe_text.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// How much of a source a message quotes (it may be a 4 KiB URI).
constexpr size_t kQuotedSourceBytes = 200;

}  // namespace

ListingBudget::ListingBudget(Limits limits) : limits_(limits) {}

absl::StatusOr<std::unique_ptr<ListingBudget::Listing>> ListingBudget::Enter(
    std::string_view source) {
  std::lock_guard lock(mutex_);
  if (in_flight_ >= limits_.max_in_flight) {
    return absl::ResourceExhaustedError(fmt::format(
        "listing {}: refused: {} listings are running already, the most this agent reads at "
        "once (listing.maxInFlight); try again when they are done",
        CutText(source, kQuotedSourceBytes), in_flight_));
  }
  ++in_flight_;
  return std::unique_ptr<Listing>(new Listing(*this, std::string(source)));
}

bool ListingBudget::Listing::Charge(uint64_t bytes) {
  std::lock_guard lock(budget_.mutex_);
  if (bytes > budget_.limits_.max_total_bytes - budget_.bytes_in_use_) return false;
  budget_.bytes_in_use_ += bytes;
  charged_ += bytes;
  return true;
}

void ListingBudget::Listing::Refund(uint64_t bytes) {
  std::lock_guard lock(budget_.mutex_);
  bytes = std::min(bytes, charged_);
  budget_.bytes_in_use_ -= bytes;
  charged_ -= bytes;
}

absl::Status ListingBudget::Listing::CutError(std::string_view what) const {
  return absl::ResourceExhaustedError(fmt::format(
      "listing {}: {} cut after {} bytes: the listings this agent reads may hold {} bytes in "
      "memory together (listing.maxTotalBytes), and they would hold more; a listing that big "
      "is more likely an origin that never ends its answer",
      CutText(source_, kQuotedSourceBytes), CutText(what, kQuotedSourceBytes), charged_,
      budget_.limits_.max_total_bytes));
}

ListingBudget::Listing::~Listing() { budget_.Return(charged_, /*slot=*/true); }

void ListingBudget::Return(uint64_t bytes, bool slot) {
  std::lock_guard lock(mutex_);
  bytes_in_use_ -= bytes;
  if (slot) --in_flight_;
}

uint64_t ListingBudget::bytes_in_use() const {
  std::lock_guard lock(mutex_);
  return bytes_in_use_;
}

uint32_t ListingBudget::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

}  // namespace modelcache
