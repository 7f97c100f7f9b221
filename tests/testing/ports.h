#pragma once
// Free TCP ports on 127.0.0.1 for servers started by tests, and whether a server accepts yet.
#include <cstdint>
#include <filesystem>

namespace modelcache::testing {

// A port that was free a moment ago (bound to 127.0.0.1:0, then released). Another process
// may take it before the caller binds it; launchers retry with a new port when that happens.
// Records a test failure and returns 0 if no socket could be bound.
uint16_t FreeTcpPort();

// True when a connect() to 127.0.0.1:<port> succeeds right now (the connection is closed).
bool TcpPortAccepts(uint16_t port);
// True when a connect() to the Unix socket at `path` succeeds right now.
bool UnixSocketAccepts(const std::filesystem::path& path);

}  // namespace modelcache::testing
