#include "agent/source/s3_list_parser.h"

#include <fmt/format.h>

#include <charconv>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

// Decodes one entity body (between '&' and ';'); false when it is not one we know.
bool DecodeEntity(std::string_view entity, std::string* out) {
  if (entity == "amp") { out->push_back('&'); return true; }
  if (entity == "lt") { out->push_back('<'); return true; }
  if (entity == "gt") { out->push_back('>'); return true; }
  if (entity == "quot") { out->push_back('"'); return true; }
  if (entity == "apos") { out->push_back('\''); return true; }
  if (entity.size() < 2 || entity[0] != '#') return false;
  int base = 10;
  std::string_view digits = entity.substr(1);
  if (digits[0] == 'x' || digits[0] == 'X') {
    base = 16;
    digits.remove_prefix(1);
  }
  uint32_t code_point = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), code_point, base);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
      code_point == 0 || code_point > 0x10FFFF) {
    return false;
  }
  AppendUtf8(code_point, out);
  return true;
}

// Element path from the root, e.g. {"ListBucketResult", "Contents", "Key"}.
using ElementPath = std::vector<std::string>;
using OpenFn = std::function<void(const ElementPath&)>;
using CloseFn = std::function<absl::Status(const ElementPath&, const std::string& text)>;

// A minimal XML walker for S3's flat documents: calls `on_open` for each start tag and
// `on_close` with the element's own decoded text (attributes and namespaces are ignored).
absl::Status WalkXml(std::string_view xml, const OpenFn& on_open, const CloseFn& on_close) {
  ElementPath path;
  std::string text;
  bool saw_root = false;
  size_t pos = 0;
  auto skip_past = [&](std::string_view terminator, std::string_view what) -> absl::Status {
    const size_t end = xml.find(terminator, pos);
    if (end == std::string_view::npos) return absl::InvalidArgumentError(fmt::format("unterminated {}", what));
    pos = end + terminator.size();
    return absl::OkStatus();
  };
  while (pos < xml.size()) {
    if (xml[pos] != '<') {
      const size_t next = std::min(xml.find('<', pos), xml.size());
      text += DecodeXmlEntities(xml.substr(pos, next - pos));
      pos = next;
      continue;
    }
    const std::string_view rest = xml.substr(pos);
    if (rest.substr(0, 2) == "<?") {
      RETURN_IF_ERROR(skip_past("?>", "processing instruction"));
    } else if (rest.substr(0, 4) == "<!--") {
      RETURN_IF_ERROR(skip_past("-->", "comment"));
    } else if (rest.substr(0, 9) == "<![CDATA[") {
      const size_t start = pos + 9;
      pos = start;
      RETURN_IF_ERROR(skip_past("]]>", "CDATA section"));
      text.append(xml.substr(start, pos - 3 - start));
    } else if (rest.substr(0, 2) == "<!") {
      RETURN_IF_ERROR(skip_past(">", "declaration"));
    } else if (rest.substr(0, 2) == "</") {
      const size_t end = xml.find('>', pos);
      if (end == std::string_view::npos) return absl::InvalidArgumentError("unterminated end tag");
      std::string_view name = xml.substr(pos + 2, end - pos - 2);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t' || name.back() == '\n' || name.back() == '\r')) name.remove_suffix(1);
      if (path.empty() || path.back() != name) {
        return absl::InvalidArgumentError(fmt::format("unexpected end tag </{}>", name));
      }
      RETURN_IF_ERROR(on_close(path, text));
      path.pop_back();
      text.clear();
      pos = end + 1;
    } else {
      const size_t end = xml.find('>', pos);
      if (end == std::string_view::npos) return absl::InvalidArgumentError("unterminated start tag");
      const std::string_view tag = xml.substr(pos + 1, end - pos - 1);
      const size_t name_end = std::min(tag.find_first_of(" \t\r\n/"), tag.size());
      const std::string_view name = tag.substr(0, name_end);
      if (name.empty()) return absl::InvalidArgumentError("empty tag name");
      if (path.empty()) {
        if (saw_root) return absl::InvalidArgumentError("more than one root element");
        saw_root = true;
      }
      path.emplace_back(name);
      text.clear();
      on_open(path);
      if (!tag.empty() && tag.back() == '/') {
        RETURN_IF_ERROR(on_close(path, text));
        path.pop_back();
      }
      pos = end + 1;
    }
  }
  if (!path.empty()) return absl::InvalidArgumentError(fmt::format("unclosed element <{}>", path.back()));
  if (!saw_root) return absl::InvalidArgumentError("no XML element");
  return absl::OkStatus();
}

}  // namespace

std::string DecodeXmlEntities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t amp = text.find('&', pos);
    if (amp == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    out.append(text.substr(pos, amp - pos));
    const size_t semicolon = text.find(';', amp);
    // Entities are short; a far-away ';' means this '&' was literal.
    if (semicolon == std::string_view::npos || semicolon - amp > 12 ||
        !DecodeEntity(text.substr(amp + 1, semicolon - amp - 1), &out)) {
      out.push_back('&');
      pos = amp + 1;
      continue;
    }
    pos = semicolon + 1;
  }
  return out;
}

absl::StatusOr<S3ListPage> ParseListObjectsV2(std::string_view xml) {
  S3ListPage page;
  bool root_ok = false;
  bool have_key = true;
  auto on_open = [&](const ElementPath& path) {
    if (path.size() == 1) root_ok = path[0] == "ListBucketResult";
    if (path.size() == 2 && path[1] == "Contents") {
      page.objects.emplace_back();
      have_key = false;
    }
  };
  auto on_close = [&](const ElementPath& path, const std::string& text) -> absl::Status {
    if (!root_ok) {
      return absl::InvalidArgumentError(
          fmt::format("not a ListObjectsV2 response (root element <{}>)", path[0]));
    }
    if (path.size() == 2) {
      if (path[1] == "IsTruncated") page.is_truncated = text == "true";
      if (path[1] == "NextContinuationToken") page.next_continuation_token = text;
      if (path[1] == "Contents" && !have_key) {
        return absl::InvalidArgumentError("<Contents> without <Key>");
      }
    } else if (path.size() == 3 && path[1] == "Contents") {
      S3Object& object = page.objects.back();
      if (path[2] == "Key") {
        object.key = text;
        have_key = true;
      } else if (path[2] == "ETag") {
        object.etag = text;
      } else if (path[2] == "ChecksumAlgorithm") {
        object.has_sha256_checksum = object.has_sha256_checksum || text == "SHA256";
      } else if (path[2] == "Size") {
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), object.size);
        if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
          return absl::InvalidArgumentError(fmt::format("bad <Size> '{}' for key '{}'", text, object.key));
        }
      }
    }
    return absl::OkStatus();
  };
  absl::Status status = WalkXml(xml, on_open, on_close);
  if (!status.ok()) {
    return absl::InvalidArgumentError(fmt::format("malformed ListObjectsV2 response: {}",
                                                  std::string(status.message())));
  }
  if (page.is_truncated && page.next_continuation_token.empty()) {
    return absl::InvalidArgumentError(
        "malformed ListObjectsV2 response: IsTruncated without NextContinuationToken");
  }
  return page;
}

std::optional<S3Error> ParseS3Error(std::string_view xml) {
  S3Error error;
  bool is_error = false;
  auto on_open = [&](const ElementPath& path) {
    if (path.size() == 1) is_error = path[0] == "Error";
  };
  auto on_close = [&](const ElementPath& path, const std::string& text) -> absl::Status {
    if (is_error && path.size() == 2 && path[1] == "Code") error.code = text;
    if (is_error && path.size() == 2 && path[1] == "Message") error.message = text;
    return absl::OkStatus();
  };
  if (!WalkXml(xml, on_open, on_close).ok() || !is_error) return std::nullopt;
  return error;
}

std::optional<std::string> WholeObjectSha256Hex(std::string_view header_value,
                                                std::string_view checksum_type) {
  if (checksum_type == "COMPOSITE" || header_value.find('-') != std::string_view::npos) {
    return std::nullopt;
  }
  std::string digest;
  if (!absl::Base64Unescape(absl::string_view(header_value.data(), header_value.size()), &digest) ||
      digest.size() != 32) {
    return std::nullopt;
  }
  std::string hex;
  hex.reserve(64);
  for (unsigned char byte : digest) hex += fmt::format("{:02x}", byte);
  return hex;
}

}  // namespace modelcache
