#pragma once
// Shows Ensure progress on stderr: a bar redrawn in place on a terminal, otherwise plain lines
// (at most one a second) that read well in `kubectl logs` of an init container.
#include <chrono>
#include <cstdio>
#include <string>

#include "modelcache/v1/agent.pb.h"

namespace modelcache::cli {

// Pure: "FILLING  1.2 GiB / 2.0 GiB (60%)  3/5 files  250.0 MiB/s  eta 4s".
std::string DescribeProgress(const v1::EnsureProgress& progress);

class ProgressDisplay {
 public:
  // `terminal`: draw a bar (isatty(stderr) in production).
  ProgressDisplay(std::FILE* out, bool terminal, std::string label);

  void Update(const v1::EnsureProgress& progress);
  // Ends the bar's line (terminal) or writes the last line; call once at the end.
  void Finish(const v1::EnsureProgress& final_progress);
  // Ends the bar's line without a summary, before an error message.
  void Abandon();

 private:
  using SteadyClock = std::chrono::steady_clock;
  void DrawBar(const v1::EnsureProgress& progress);

  std::FILE* out_;
  bool terminal_;
  std::string label_;
  bool drawn_ = false;
  SteadyClock::time_point last_output_{};
};

}  // namespace modelcache::cli
