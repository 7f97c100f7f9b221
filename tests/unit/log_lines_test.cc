// Issue #5: every WARN, ERROR and CRITICAL line of the daemons and the CLI says what failed
// and what happens next, in a form that logs can be grepped for and that JSON turns into
// keys: a constant message followed by LogFields (common/log_fields.h) with an `error` and a
// `next` field:
//
//   spdlog::warn("fill lease lost {}", LogFields().Add("model", name)...
//                    .Add("error", status).Add("next", "fetching stops; ..."));
//
// This test reads the sources under agent/, coordinator/, common/ and cli/ and fails on any
// such call that is plain text, interpolates values into its message, or lacks one of the
// two fields. The fields must be added inside the call itself, where a reader sees them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

struct LogCall {
  int line = 0;
  std::string text;     // the call, from its name to its closing parenthesis
  std::string problem;  // empty when the call has the wanted form
};

// `source` with every comment replaced by spaces and, if `literals` is false, the contents
// of every string and character literal too (newlines kept, so offsets and line numbers stay).
std::string Blank(std::string_view source, bool literals) {
  std::string out(source);
  auto blank = [&](size_t from, size_t to) {
    for (size_t at = from; at < to && at < out.size(); ++at) {
      if (out[at] != '\n') out[at] = ' ';
    }
  };
  auto word_char = [&](size_t at) {
    return at < source.size() && (std::isalnum(static_cast<unsigned char>(source[at])) ||
                                  source[at] == '_');
  };
  size_t i = 0;
  while (i < source.size()) {
    if (source.compare(i, 2, "//") == 0) {
      size_t end = std::min(source.find('\n', i), source.size());
      blank(i, end);
      i = end;
    } else if (source.compare(i, 2, "/*") == 0) {
      size_t end = source.find("*/", i + 2);
      end = end == std::string_view::npos ? source.size() : end + 2;
      blank(i, end);
      i = end;
    } else if (source[i] == '"' && i > 0 && source[i - 1] == 'R' && !word_char(i - 2)) {
      // R"delimiter( ... )delimiter"
      size_t open = source.find('(', i);
      if (open == std::string_view::npos) break;
      std::string close = ")" + std::string(source.substr(i + 1, open - i - 1)) + "\"";
      size_t end = source.find(close, open);
      end = end == std::string_view::npos ? source.size() : end + close.size();
      if (!literals) blank(i + 1, end - 1);
      i = end;
    } else if (source[i] == '"' || (source[i] == '\'' && !word_char(i - 1))) {
      // A quote after a digit is a digit separator (30'000), not a character literal.
      const char quote = source[i];
      size_t end = i + 1;
      while (end < source.size() && source[end] != quote && source[end] != '\n') {
        end += source[end] == '\\' ? 2 : 1;
      }
      if (!literals) blank(i + 1, end);
      i = end + 1;
    } else {
      ++i;
    }
  }
  return out;
}

// The string literal(s) starting at `at` in `code` (adjacent literals joined), escapes kept
// as written; nullopt when `at` does not start a literal.
std::optional<std::string> LiteralAt(std::string_view code, size_t& at) {
  std::optional<std::string> text;
  while (true) {
    size_t start = code.find_first_not_of(" \t\r\n", at);
    if (start == std::string_view::npos || code[start] != '"') return text;
    size_t end = start + 1;
    while (end < code.size() && code[end] != '"') end += code[end] == '\\' ? 2 : 1;
    text = text.value_or("") + std::string(code.substr(start + 1, end - start - 1));
    at = end + 1;
  }
}

std::string Judge(std::string_view code) {
  size_t at = code.find('(') + 1;
  std::optional<std::string> message = LiteralAt(code, at);
  if (!message) return "the message is not a string literal";
  if (message->find('{') == std::string::npos) {
    return "plain text: want \"<constant text> {}\", LogFields()...";
  }
  if (!message->ends_with(" {}") || message->find('{') != message->size() - 2) {
    return "values belong in LogFields, not in the message: want \"<constant text> {}\", "
           "LogFields()...";
  }
  static const std::regex kError(R"(\.Add\(\s*"error")");
  static const std::regex kNext(R"(\.Add\(\s*"next")");
  std::string rest(code.substr(at));
  if (!std::regex_search(rest, kError)) return "no error field: .Add(\"error\", ...)";
  if (!std::regex_search(rest, kNext)) return "no next field: .Add(\"next\", ...)";
  return "";
}

// Every warn/error/critical call in `source`, judged.
std::vector<LogCall> FindLogCalls(std::string_view source) {
  const std::string code = Blank(source, /*literals=*/true);
  const std::string bare = Blank(source, /*literals=*/false);
  static const std::regex kCall(
      R"((spdlog::|->)(warn|error|critical)\s*\()"
      R"(|spdlog::log\s*\(|SPDLOG_(WARN|ERROR|CRITICAL)\s*\()");
  static const std::regex kNoArguments(R"(^[^(]*\(\s*\)$)");
  static const std::regex kLevel(R"(level::(warn|err|critical))");
  std::vector<LogCall> calls;
  for (auto match = std::sregex_iterator(bare.begin(), bare.end(), kCall);
       match != std::sregex_iterator(); ++match) {
    const size_t begin = match->position();
    int depth = 0;
    size_t end = begin + match->length() - 1;  // at the '('
    for (; end < bare.size(); ++end) {
      if (bare[end] == '(') ++depth;
      if (bare[end] == ')' && --depth == 0) break;
    }
    const std::string bare_call = bare.substr(begin, end + 1 - begin);
    // x->error(): a getter (of a proto, say), not a logger.
    if (std::regex_match(bare_call, kNoArguments)) continue;
    LogCall call;
    call.line = 1 + static_cast<int>(std::count(bare.begin(), bare.begin() + begin, '\n'));
    call.text = code.substr(begin, end + 1 - begin);
    if (bare_call.starts_with("spdlog::log")) {
      if (!std::regex_search(bare_call, kLevel)) continue;  // below WARN: not checked
      call.problem = "use spdlog::warn/error/critical, with a constant message and LogFields";
    } else if (bare_call.starts_with("SPDLOG_")) {
      call.problem = "use spdlog::warn/error/critical, with a constant message and LogFields";
    } else {
      call.problem = Judge(call.text);
    }
    calls.push_back(std::move(call));
  }
  return calls;
}

std::vector<LogCall> Problems(std::string_view source) {
  std::vector<LogCall> calls = FindLogCalls(source);
  std::erase_if(calls, [](const LogCall& call) { return call.problem.empty(); });
  return calls;
}

TEST(LogLines, EveryWarnErrorAndCriticalLineHasAConstantMessageAnErrorAndANext) {
  const fs::path root = MODELCACHE_SOURCE_DIR;
  size_t checked = 0;
  std::vector<std::string> problems;
  for (const char* folder : {"agent", "coordinator", "common", "cli", "kube"}) {
    ASSERT_TRUE(fs::is_directory(root / folder)) << root / folder;
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      const std::string extension = entry.path().extension().string();
      if (!entry.is_regular_file() || (extension != ".cc" && extension != ".h")) continue;
      const std::string relative = entry.path().lexically_relative(root).string();
      for (const LogCall& call : FindLogCalls(testing::ReadTestFile(entry.path()))) {
        ++checked;
        if (!call.problem.empty()) {
          problems.push_back(relative + ":" + std::to_string(call.line) + ": " + call.problem +
                             "\n    " + call.text);
        }
      }
    }
  }
  // The daemons have some fifty such lines: far fewer means the search itself broke.
  EXPECT_GE(checked, 40u) << "the search for log calls found only " << checked;
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

// The checker itself, on lines written for it.

TEST(LogLines, APlainTextLineIsFlagged) {
  std::vector<LogCall> found = Problems(R"src(
    void F() {
      spdlog::warn("fill {}@{}: saving the journal: {}", name_, version_, status);
    })src");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].line, 3);
  EXPECT_THAT(found[0].problem, ::testing::HasSubstr("values belong in LogFields"));
  EXPECT_THAT(Problems(R"src(spdlog::error("{}", check.message);)src"), ::testing::SizeIs(1));
  EXPECT_THAT(Problems(R"src(spdlog::error("cannot save the journal");)src")[0].problem,
              ::testing::HasSubstr("plain text"));
  EXPECT_THAT(Problems(R"src(logger->critical(message);)src")[0].problem,
              ::testing::HasSubstr("not a string literal"));
}

TEST(LogLines, AMissingErrorOrNextIsFlagged) {
  std::vector<LogCall> no_next = Problems(R"src(
    spdlog::error("recording a disconnect failed {}",
                  LogFields().Add("node", node).Add("error", disconnected));)src");
  ASSERT_EQ(no_next.size(), 1u);
  EXPECT_THAT(no_next[0].problem, ::testing::HasSubstr("no next field"));
  std::vector<LogCall> no_error = Problems(
      R"src(spdlog::warn("x {}", LogFields().Add("model", m).Add("next", "retried"));)src");
  ASSERT_EQ(no_error.size(), 1u);
  EXPECT_THAT(no_error[0].problem, ::testing::HasSubstr("no error field"));
  // A field named in the message's text does not count.
  EXPECT_THAT(Problems(R"src(spdlog::warn("error next {}", fields);)src"), ::testing::SizeIs(1));
}

TEST(LogLines, OtherSpellingsOfAWarningAreFlagged) {
  using ::testing::IsEmpty;
  using ::testing::SizeIs;
  EXPECT_THAT(Problems(R"src(spdlog::log(spdlog::level::err, "x {}", y);)src"), SizeIs(1));
  EXPECT_THAT(Problems(R"src(SPDLOG_WARN("x {}", y);)src"), SizeIs(1));
  EXPECT_THAT(Problems(R"src(spdlog::default_logger()->warn("x");)src"), SizeIs(1));
  EXPECT_THAT(Problems(R"src(spdlog::log(spdlog::level::info, "x {}", y);)src"), IsEmpty());
  EXPECT_THAT(Problems(R"src(if (result->error().empty()) return;)src"), IsEmpty());
}

TEST(LogLines, AWellFormedLineCommentsAndStringsPass) {
  EXPECT_THAT(Problems(R"src(
    // spdlog::warn("plain text in a comment is not a call");
    /* spdlog::error("{}", nor_here); */
    const char* text = "spdlog::warn(\"nor in a string\")";
    status.error();  // not a log call
    spdlog::warn("fill lease not renewed {}",
                 LogFields()
                     .Add("model", name_)   // (a comment with a paren
                     .Add("error", held)
                     .Add("next", fmt::format("renewal retried in {} ms (at most {})", a, b)));
    spdlog::info("plain {} info lines {}", are, not_checked);
  )src"),
              ::testing::IsEmpty());
}

}  // namespace
}  // namespace modelcache
