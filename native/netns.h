// Pieces of named-namespace handling shared with the bulk path (bulk.cc).
#pragma once
#include <string>

#include "op_error.h"

namespace nk {
// Makes the run directory (/run/netns) a shared mount, once per process, like `ip netns add`.
bool EnsureSharedRunDir(const std::string& dir, OpError* err);
}  // namespace nk
