// flock(2) without blocking, for the CNI address allocator's lease file. The kernel drops the lock
// when the holder's descriptor closes or its process dies, so a crashed plugin never leaves a
// stale lock behind (an O_EXCL lock file would). Runs on the main thread: LOCK_NB never waits and
// no namespace is involved.
#include <sys/file.h>

#include <cerrno>
#include <cstring>

#include "addon.h"

namespace nk {
namespace {

// flockTry(fd): true when the exclusive lock was taken, false when another holder has it.
Napi::Value FlockTry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    Napi::Error e = Napi::Error::New(env, std::string("flock: ") + strerror(errno));
    e.Set("errno", Napi::Number::New(env, -errno));
    e.Set("syscall", Napi::String::New(env, "flock"));
    throw e;
  }
}

}  // namespace

void InitFileLock(Napi::Env env, Napi::Object exports) {
  exports.Set("flockTry", Napi::Function::New(env, FlockTry));
}

}  // namespace nk
