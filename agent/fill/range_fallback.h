#pragma once
// What a fill does when its origin answers range requests with HTTP 200 and the whole file.
// Pure: no I/O, no clock.
//
// A CDN edge that has not cached an object yet, or a proxy that drops the Range header on
// some requests, answers a few range GETs among many with the whole file. That answer is a
// fault of the one request: the fetcher drops the connection and the chunk is retried as a
// range. Only an origin that ignores Range every time for a file makes the fill take that
// file as one stream (a GET without Range, written in order as it arrives), as `curl -o`
// would.
#include <cstdint>

namespace modelcache {

// Answers to range requests for part of a file (a request for a whole file proves nothing).
struct RangeAnswers {
  uint32_t served = 0;   // 206 with the bytes asked for
  uint32_t ignored = 0;  // 200 with the whole file
};

// Ignored answers, with none served, after which a file (or, for the whole fill, every
// file not started yet) is taken as one stream.
inline constexpr uint32_t kIgnoredRangesBeforeStream = 3;

// Whether to stop asking for ranges of a file and take it as one stream: the origin ignored
// every range request for it (none served), kIgnoredRangesBeforeStream times; or it ignored
// every range request of the whole fill (`fill`) as often; or the chunk that met the last
// ignored answer has no attempt left (`chunk_can_retry` false), since a stream of the whole
// file still succeeds where ranges failed.
bool ShouldStreamWholeFile(const RangeAnswers& file, const RangeAnswers& fill, bool chunk_can_retry);

// Whether the fill should start a file that no range request was made for yet as one
// stream right away: every range request of the fill so far was ignored, often enough.
bool OriginIgnoresRanges(const RangeAnswers& fill);

}  // namespace modelcache
