// /proc/sys/net/* files answer for the namespace of the thread that opens them, so these run only
// on a worker thread that has entered the target namespace. `key` is a path below /proc/sys,
// already validated by lib/sysctl.ts (net/..., no "..").
#pragma once
#include <string>

#include "op_error.h"

namespace nk {
bool WriteSysctl(const std::string& key, const std::string& value, OpError* err);
bool ReadSysctl(const std::string& key, std::string* value, OpError* err);
}  // namespace nk
