#pragma once
// Resolves AWS credentials the way the AWS CLI does, from values the caller has read.
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/source/source.h"

namespace modelcache {

// In order:
//   1. env AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   2. the profile's aws_access_key_id / aws_secret_access_key / aws_session_token in
//      `credentials_file_text` (INI, the text of ~/.aws/credentials; may be empty). The
//      profile is `profile` if non-empty, else env AWS_PROFILE, else "default";
//   3. anonymous (empty credentials: unsigned requests).
// INVALID_ARGUMENT when a key id comes without its secret (or the reverse), when the file
// text is not INI, or when a profile named explicitly (argument or AWS_PROFILE) is absent.
// Messages name the variable or profile, never the secret.
absl::StatusOr<AwsCredentials> ResolveAwsCredentials(const std::map<std::string, std::string>& env,
                                                     std::string_view credentials_file_text,
                                                     std::string_view profile);

}  // namespace modelcache
