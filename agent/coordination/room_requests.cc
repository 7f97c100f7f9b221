#include "agent/coordination/room_requests.h"

#include "agent/coordination/volume_client.h"
#include "common/log_fields.h"
#include "common/status_annotate.h"
#include "spdlog/spdlog.h"

namespace modelcache {

RoomRequests::RoomRequests(VolumeClient& client, std::string volume_id,
                           std::chrono::milliseconds timeout)
    : client_(client), volume_id_(std::move(volume_id)), timeout_(timeout),
      thread_([this] { Run(); }) {}

RoomRequests::~RoomRequests() { Stop(); }

void RoomRequests::Ask(std::string name, std::string version, uint64_t bytes_short,
                       std::function<void(absl::Status)> done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    queue_.push_back(Request{std::move(name), std::move(version), bytes_short, std::move(done)});
  }
  wake_.notify_one();
}

void RoomRequests::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void RoomRequests::Run() {
  for (;;) {
    Request request;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      request = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::Status made = Make(request);
    request.done(std::move(made));
  }
}

absl::Status RoomRequests::Make(const Request& request) {
  v1::MakeRoomRequest call;
  call.set_volume_id(volume_id_);
  call.set_name(request.name);
  call.set_version(request.version);
  call.set_bytes_needed(request.bytes_short);
  absl::StatusOr<v1::PurgeResponse> purged = client_.MakeRoom(call, timeout_);
  if (!purged.ok()) {
    // The fill fails with this reason added to its RESOURCE_EXHAUSTED (logged there).
    return Annotate(purged.status(), "room on demand");
  }
  uint64_t bytes = 0;
  for (const v1::PurgeAction& action : purged->actions()) bytes += action.size_bytes();
  spdlog::info("room on demand made {}", LogFields()
                                             .Add("model", request.name)
                                             .Add("version", request.version)
                                             .Add("bytes_short", request.bytes_short)
                                             .Add("purged", purged->actions_size())
                                             .Add("bytes_purged", bytes));
  return absl::OkStatus();
}

}  // namespace modelcache
