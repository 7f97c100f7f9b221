#include "cli/local_fill.h"

#include "agent/grpc/ensure_mailbox.h"
#include "agent/loop/event_loop.h"
#include "agent/single_flight/fill_gate.h"
#include <climits>
#include <unistd.h>
#include "agent/model_cache.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

// The fill lock of a local fill: as the agent's (agent/store/fill_lock.h), so that fetches
// into one --dest, by several processes or next to an agent on the same folder, fill a model
// once; the others wait and find it ready. A holder that dies is taken over at once by a
// process on the same machine (its pid is gone), otherwise after the ttl.
constexpr std::chrono::seconds kLocalLockTtl{30};
constexpr std::chrono::milliseconds kLocalLockPoll{250};

std::string ThisHostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

absl::StatusOr<v1::EnsureProgress> FillLocally(
    const v1::EnsureRequest& request, const std::filesystem::path& dest,
    const SourceOptions& sources, std::optional<std::chrono::seconds> timeout,
    const std::function<void(const v1::EnsureProgress&)>& on_progress) {
  SystemClock clock;
  EventLoop loop;
  loop.Start();
  auto gate = std::make_unique<FillGate>(
      loop, clock,
      FillGateOptions{.cache_root = dest,
                      .node_name = ThisHostName(),
                      .lease_ttl = kLocalLockTtl,
                      .poll_interval = kLocalLockPoll,
                      .wait_timeout = timeout.value_or(std::chrono::hours(24 * 365))},
      /*coordinator=*/nullptr);
  ModelCacheOptions options;
  options.cache_root = dest;
  options.sources = sources;
  options.fill_gate = gate.get();
  absl::StatusOr<std::unique_ptr<ModelCache>> opened = ModelCache::Open(loop, clock, options);
  if (!opened.ok()) {
    gate.reset();
    loop.Stop();
    return opened.status();
  }
  std::unique_ptr<ModelCache> cache = *std::move(opened);

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
  // Releases the fill lock (the gate's sessions end and are joined) before the loop stops.
  gate.reset();
  loop.Stop();
  return result;
}

}  // namespace modelcache::cli
