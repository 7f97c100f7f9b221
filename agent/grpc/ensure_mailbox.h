#pragma once
// Hands ModelCache::Ensure's callbacks (loop thread) to the one thread waiting for them (a
// gRPC handler, or modelcachectl's local fallback). Bounded by design: it keeps only the
// newest progress, so a slow reader skips intermediate updates but never the final result.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "absl/status/statusor.h"
#include "modelcache/v1/agent.pb.h"

namespace modelcache {

class EnsureMailbox {
 public:
  struct Mail {
    std::optional<v1::EnsureProgress> progress;           // newest since the last Wait
    std::optional<absl::StatusOr<v1::EnsureProgress>> done;  // set once, after the last progress
  };

  void PostProgress(const v1::EnsureProgress& progress) {
    std::lock_guard lock(mutex_);
    progress_ = progress;
    changed_.notify_one();
  }
  void PostDone(absl::StatusOr<v1::EnsureProgress> result) {
    std::lock_guard lock(mutex_);
    done_ = std::move(result);
    changed_.notify_one();
  }

  // Waits until something was posted or `timeout` passed (then the Mail is empty, so the
  // caller can check for cancellation). The done result is returned by every later Wait too.
  Mail Wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [this] { return progress_.has_value() || done_.has_value(); });
    Mail mail;
    mail.progress = std::move(progress_);
    progress_.reset();
    mail.done = done_;
    return mail;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<v1::EnsureProgress> progress_;
  std::optional<absl::StatusOr<v1::EnsureProgress>> done_;
};

}  // namespace modelcache
