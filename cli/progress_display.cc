#include "cli/progress_display.h"

#include <algorithm>
#include <cmath>

#include "common/quantity.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

constexpr std::chrono::milliseconds kTerminalRedraw{100};
constexpr std::chrono::seconds kLineInterval{1};
constexpr int kBarWidth = 30;

std::string StateName(v1::EnsureProgress::State state) {
  switch (state) {
    case v1::EnsureProgress::QUEUED: return "QUEUED";
    case v1::EnsureProgress::FILLING: return "FILLING";
    case v1::EnsureProgress::PUBLISHING: return "PUBLISHING";
    case v1::EnsureProgress::READY: return "READY";
    default: return "STARTING";
  }
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto whole = static_cast<uint64_t>(std::llround(seconds));
  if (whole < 60) return fmt::format("{}s", whole);
  if (whole < 3600) return fmt::format("{}m{:02}s", whole / 60, whole % 60);
  return fmt::format("{}h{:02}m", whole / 3600, (whole % 3600) / 60);
}

double Fraction(const v1::EnsureProgress& progress) {
  if (progress.bytes_total() == 0) return progress.state() == v1::EnsureProgress::READY ? 1.0 : 0.0;
  return std::min(1.0, static_cast<double>(progress.bytes_done()) /
                           static_cast<double>(progress.bytes_total()));
}

}  // namespace

std::string DescribeProgress(const v1::EnsureProgress& progress) {
  std::string text = StateName(progress.state());
  if (progress.bytes_total() > 0) {
    text += fmt::format("  {} / {} ({:.0f}%)", FormatBytes(progress.bytes_done()),
                        FormatBytes(progress.bytes_total()), Fraction(progress) * 100);
  }
  if (progress.files_total() > 0) {
    text += fmt::format("  {}/{} files", progress.files_done(), progress.files_total());
  }
  if (progress.bytes_per_second() > 0) {
    text += fmt::format("  {}/s", FormatBytes(static_cast<uint64_t>(progress.bytes_per_second())));
    if (progress.state() == v1::EnsureProgress::FILLING) {
      text += "  eta " + FormatSeconds(progress.eta_seconds());
    }
  }
  return text;
}

ProgressDisplay::ProgressDisplay(std::FILE* out, bool terminal, std::string label)
    : out_(out), terminal_(terminal), label_(std::move(label)) {}

void ProgressDisplay::Update(const v1::EnsureProgress& progress) {
  SteadyClock::time_point now = SteadyClock::now();
  if (terminal_) {
    if (drawn_ && now - last_output_ < kTerminalRedraw) return;
    DrawBar(progress);
  } else {
    if (drawn_ && now - last_output_ < kLineInterval) return;
    fmt::print(out_, "{}: {}\n", label_, DescribeProgress(progress));
    std::fflush(out_);
  }
  drawn_ = true;
  last_output_ = now;
}

void ProgressDisplay::DrawBar(const v1::EnsureProgress& progress) {
  int filled = static_cast<int>(Fraction(progress) * kBarWidth);
  std::string bar = std::string(filled, '#') + std::string(kBarWidth - filled, '.');
  // \r and "erase to end of line" redraw in place.
  fmt::print(out_, "\r{} [{}] {}\x1b[K", label_, bar, DescribeProgress(progress));
  std::fflush(out_);
}

void ProgressDisplay::Finish(const v1::EnsureProgress& final_progress) {
  std::string summary = final_progress.hit()
                            ? "already cached"
                            : fmt::format("filled {}", FormatBytes(final_progress.bytes_total()));
  if (terminal_) {
    DrawBar(final_progress);
    fmt::print(out_, "\n");
  }
  fmt::print(out_, "{}: ready ({}) at {}\n", label_, summary, final_progress.path());
  std::fflush(out_);
}

void ProgressDisplay::Abandon() {
  if (terminal_ && drawn_) fmt::print(out_, "\n");
  std::fflush(out_);
}

}  // namespace modelcache::cli
