#include "kube/informer.h"

#include <random>

#include "common/log_fields.h"
#include "spdlog/spdlog.h"

namespace modelcache::kube {
namespace {

using nlohmann::json;

std::string ResourceVersionOf(const json& object) {
  if (!object.is_object()) return "";
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto value = metadata->find("resourceVersion");
  return value != metadata->end() && value->is_string() ? value->get<std::string>() : "";
}

const char* Describe(NextAction action) {
  switch (action) {
    case NextAction::kWatch:
      return "watch again";
    case NextAction::kRelist:
      return "relist";
    case NextAction::kStop:
      return "stop";
  }
  return "?";
}

}  // namespace

Informer::Informer(KubeClient& client, Resource resource, InformerOptions options, InformerHandler& handler,
                   const Clock& clock)
    : client_(client),
      resource_(std::move(resource)),
      options_(std::move(options)),
      handler_(handler),
      clock_(clock),
      random_state_(options_.random_seed != 0 ? options_.random_seed : std::random_device{}()) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  stop_.Stop();
  if (thread_.joinable()) thread_.join();
}

bool Informer::Synced() const { return synced_.load(); }

std::vector<json> Informer::List() const {
  std::lock_guard lock(mutex_);
  std::vector<json> objects;
  objects.reserve(cache_.size());
  for (const auto& [key, object] : cache_) objects.push_back(object);
  return objects;
}

std::optional<json> Informer::Get(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto found = cache_.find(key);
  if (found == cache_.end()) return std::nullopt;
  return found->second;
}

std::string Informer::ResourceVersion() const {
  std::lock_guard lock(mutex_);
  return resource_version_;
}

InformerStats Informer::Stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Informer::Deliver(std::function<void()> task) {
  if (options_.deliver) {
    options_.deliver(std::move(task));
  } else {
    task();
  }
}

double Informer::RandomUnit() {
  // splitmix64: the informer thread's own generator, no shared state.
  uint64_t z = (random_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ull << 53);
}

absl::Status Informer::ListAndResync() {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  list_options.field_selector = options_.field_selector;
  list_options.limit = options_.page_size;
  {
    std::lock_guard lock(mutex_);
    ++stats_.lists;
    if (synced_.load()) ++stats_.relists;
  }
  absl::StatusOr<ListPage> listed = client_.ListAll(resource_, options_.namespace_name, list_options);
  if (!listed.ok()) return listed.status();

  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mutex_);
    std::map<std::string, std::string> cached;
    for (const auto& [key, object] : cache_) cached.emplace(key, ResourceVersionOf(object));
    const ResyncPlan plan = PlanResync(cached, listed->items);
    std::map<std::string, json> fresh;
    for (json& object : listed->items) {
      std::string key = ObjectKey(object);
      fresh.emplace(std::move(key), std::move(object));
    }
    for (const std::string& key : plan.deleted) {
      tasks.push_back([handler = &handler_, last = cache_[key]] { handler->OnDeleted(last); });
    }
    for (const std::string& key : plan.added) {
      tasks.push_back([handler = &handler_, object = fresh[key]] { handler->OnAdded(object); });
    }
    for (const std::string& key : plan.modified) {
      tasks.push_back([handler = &handler_, before = cache_[key], object = fresh[key]] { handler->OnModified(before, object); });
    }
    cache_ = std::move(fresh);
    resource_version_ = listed->resource_version;
  }
  synced_.store(true);
  tasks.push_back([handler = &handler_] { handler->OnSynced(); });
  for (auto& task : tasks) Deliver(std::move(task));
  return absl::OkStatus();
}

absl::Status Informer::WatchOnce(int& events) {
  WatchOptions watch_options;
  watch_options.label_selector = options_.label_selector;
  watch_options.field_selector = options_.field_selector;
  watch_options.allow_bookmarks = true;
  watch_options.timeout = options_.watch_timeout;
  {
    std::lock_guard lock(mutex_);
    watch_options.resource_version = resource_version_;
    ++stats_.watches;
  }
  auto on_event = [&](WatchEvent event) -> absl::Status {
    ++events;
    const std::string resource_version = ResourceVersionOf(event.object);
    std::function<void()> task;
    {
      std::lock_guard lock(mutex_);
      if (!resource_version.empty()) resource_version_ = resource_version;
      if (event.type == WatchEventType::kBookmark) {
        ++stats_.bookmarks;
        return absl::OkStatus();
      }
      ++stats_.events;
      const std::string key = ObjectKey(event.object);
      auto found = cache_.find(key);
      if (event.type == WatchEventType::kDeleted) {
        if (found != cache_.end()) cache_.erase(found);
        task = [handler = &handler_, object = std::move(event.object)] { handler->OnDeleted(object); };
      } else if (found == cache_.end()) {
        cache_.emplace(key, event.object);
        task = [handler = &handler_, object = std::move(event.object)] { handler->OnAdded(object); };
      } else {
        json before = std::move(found->second);
        found->second = event.object;
        task = [handler = &handler_, before = std::move(before), object = std::move(event.object)] {
          handler->OnModified(before, object);
        };
      }
    }
    Deliver(std::move(task));
    return absl::OkStatus();
  };
  return client_.Watch(resource_, options_.namespace_name, watch_options, on_event, &stop_);
}

void Informer::Run() {
  const std::string what = DescribeTarget(resource_, options_.namespace_name, {});
  int failures = 0;
  NextStep step{NextAction::kRelist, std::chrono::milliseconds(0), 0};
  while (!stop_.Stopped()) {
    if (step.delay.count() > 0 && stop_.WaitFor(step.delay)) break;
    absl::Status result;
    if (step.action == NextAction::kRelist) {
      result = ListAndResync();
      step = AfterList(options_.backoff, result, failures, RandomUnit());
      if (!result.ok() && step.action != NextAction::kStop) {
        spdlog::warn("kubernetes list failed {}",
                     LogFields().Add("resource", what).Add("error", result)
                         .Add("next", fmt::format("list again in {} ms", step.delay.count())));
      }
    } else {
      const Clock::TimePoint started = clock_.Now();
      int events = 0;
      result = WatchOnce(events);
      const auto lasted = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - started);
      const WatchEnd end = ClassifyWatchEnd(result);
      step = AfterWatch(options_.backoff, end, lasted, events, failures, RandomUnit());
      if (end == WatchEnd::kGone) {
        spdlog::info("kubernetes watch expired {}",
                     LogFields().Add("resource", what).Add("next", Describe(step.action)));
      } else if (end == WatchEnd::kDropped || end == WatchEnd::kFailed) {
        spdlog::warn("kubernetes watch failed {}",
                     LogFields().Add("resource", what).Add("error", result)
                         .Add("next", fmt::format("{} in {} ms", Describe(step.action), step.delay.count())));
      }
    }
    if (step.action == NextAction::kStop) break;
    if (!result.ok()) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.failures;
      }
      Deliver([handler = &handler_, result, delay = step.delay] { handler->OnTrouble(result, delay); });
    }
    failures = step.failures;
  }
}

}  // namespace modelcache::kube
