#include "agent/store/process_identity.h"

#include <unistd.h>

#include <charconv>
#include <climits>
#include <string_view>

#include "common/fs.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Field 22 (starttime) of a /proc/<pid>/stat line. The second field is the command name in
// parentheses and may itself hold spaces and ')', so fields are counted after the last ')'.
std::optional<uint64_t> StartTicksOfStatLine(std::string_view line) {
  size_t close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  // rest starts with " <field 3> <field 4> ...": field 22 is the 20th after the ')'.
  int field = 2;
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    if (pos == end) break;
    ++field;
    if (field == 22) {
      uint64_t ticks = 0;
      auto [ptr, error] = std::from_chars(rest.data() + pos, rest.data() + end, ticks);
      if (error != std::errc() || ptr != rest.data() + end) return std::nullopt;
      return ticks;
    }
    pos = end;
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> ProcessStartTicks(int64_t pid) {
  if (pid <= 0) return std::nullopt;
  absl::StatusOr<std::string> line = ReadFileToString(fmt::format("/proc/{}/stat", pid));
  if (!line.ok()) return std::nullopt;
  return StartTicksOfStatLine(*line);
}

ProcessIdentity ProcessIdentity::OfThisProcess() {
  ProcessIdentity self;
  self.pid = ::getpid();
  absl::StatusOr<std::string> boot_id = ReadFileToString("/proc/sys/kernel/random/boot_id");
  if (boot_id.ok()) self.boot_id = Trimmed(*std::move(boot_id));
  char link[PATH_MAX];
  ssize_t length = ::readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
  if (length > 0) self.pid_namespace.assign(link, static_cast<size_t>(length));
  self.start_ticks = ProcessStartTicks(self.pid).value_or(0);
  return self;
}

}  // namespace modelcache
