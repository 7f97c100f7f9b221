#include "cli/local_fill.h"

#include "agent/grpc/ensure_mailbox.h"
#include "agent/loop/event_loop.h"
#include "agent/model_cache.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {

absl::StatusOr<v1::EnsureProgress> FillLocally(
    const v1::EnsureRequest& request, const std::filesystem::path& dest,
    const SourceOptions& sources, std::optional<std::chrono::seconds> timeout,
    const std::function<void(const v1::EnsureProgress&)>& on_progress) {
  SystemClock clock;
  EventLoop loop;
  loop.Start();
  ModelCacheOptions options;
  options.cache_root = dest;
  options.sources = sources;
  ASSIGN_OR_RETURN(std::unique_ptr<ModelCache> cache, ModelCache::Open(loop, clock, options));

  auto mailbox = std::make_shared<EnsureMailbox>();
  uint64_t subscription = cache->Ensure(
      request, [mailbox](const v1::EnsureProgress& progress) { mailbox->PostProgress(progress); },
      [mailbox](absl::StatusOr<v1::EnsureProgress> result) { mailbox->PostDone(std::move(result)); });
  auto deadline = std::chrono::steady_clock::now() +
                  timeout.value_or(std::chrono::hours(24 * 365));
  absl::StatusOr<v1::EnsureProgress> result;
  while (true) {
    EnsureMailbox::Mail mail = mailbox->Wait(std::chrono::milliseconds(200));
    if (mail.done) {
      result = *std::move(mail.done);
      break;
    }
    if (mail.progress) on_progress(*mail.progress);
    if (std::chrono::steady_clock::now() >= deadline) {
      cache->Unsubscribe(subscription);
      result = absl::DeadlineExceededError(
          fmt::format("model {}@{}: not ready after {}s", request.name(), request.version(),
                      timeout->count()));
      break;
    }
  }
  // Stops the fill if it is still running (timeout); its staging journal allows a resume.
  cache.reset();
  loop.Stop();
  return result;
}

}  // namespace modelcache::cli
