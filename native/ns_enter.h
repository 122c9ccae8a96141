// Entering a network namespace on an addon-owned thread, and always coming back.
//
// setns(2) changes the namespace of the calling *thread*. Only the addon's own worker threads
// (worker_pool.cc) may use these helpers: the main thread and libuv's pool threads never switch.
#pragma once
#include <string>
#include <sys/types.h>

#include "fd.h"
#include "op_error.h"

namespace nk {

struct NsId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const NsId& o) const { return dev == o.dev && ino == o.ino; }
};

// How lib/ names a namespace to the addon: its path, optionally followed by "\0DEV:INO", the
// identity (st_dev, st_ino) of the namespace the Netns handle was made for. A path that now holds
// another namespace (deleted and re-created by another tool) then fails with ESTALE wherever the
// namespace is opened, instead of acting on the new one.
struct NsRef {
  std::string path;
  bool pinned = false;
  NsId expect;
};
NsRef ParseNsRef(const std::string& ref);
// The path part of a reference (for messages and cache keys).
inline std::string NsPath(const std::string& ref) { return ref.substr(0, ref.find('\0')); }
// ESTALE when `r` is pinned to another namespace than `now`.
bool CheckPinned(const NsRef& r, const NsId& now, OpError* err);

// Identity of the namespace file at `path` (a reference: ESTALE when pinned to another one). Fails with ENOENT when `path` does not exist or is not
// a namespace (e.g. an unmounted /run/netns entry, which is an empty regular file).
bool NsIdOfPath(const std::string& path, NsId* out, OpError* err);

// Opens `path` (a reference) and checks it is a network namespace file, and the pinned one.
Fd OpenNetns(const std::string& path, OpError* err);

// Called once by each worker thread when it starts: remembers the namespace to return to.
void RememberHomeNamespace();

// Switches the calling worker thread into `path` for the guard's lifetime. The destructor switches
// back and verifies (st_dev, st_ino) of /proc/thread-self/ns/net; if that fails the process aborts,
// because a thread left in the wrong namespace would silently act on the wrong network.
// An empty `path` means "the namespace the thread is in": nothing is switched, and ok() is true.
class NsGuard {
 public:
  NsGuard(const std::string& path, OpError* err);
  ~NsGuard();
  // False when `path` could not be entered (`err` says why).
  bool ok() const { return ok_; }
  NsGuard(const NsGuard&) = delete;
  NsGuard& operator=(const NsGuard&) = delete;

 private:
  bool entered_ = false;
  bool ok_ = false;
};

// Creates fresh network namespaces for the calling worker thread: each Enter() moves the thread
// into a new, empty namespace (unshare(CLONE_NEWNET); namespaces are not nested, so a second
// Enter() starts from the first new one, not from inside it). The destructor switches the thread
// back home once, verified like NsGuard's, and aborts the process if that fails. Whatever the
// caller did not pin (a bind mount, an open fd) dies with the thread's last reference.
class ScopedUnshare {
 public:
  ScopedUnshare() = default;
  ~ScopedUnshare();
  // False (`err` filled with `op` and `detail`) when the kernel refused; the thread is then where
  // it was.
  bool Enter(OpError* err, const char* op, const std::string& detail);
  ScopedUnshare(const ScopedUnshare&) = delete;
  ScopedUnshare& operator=(const ScopedUnshare&) = delete;

 private:
  bool away_ = false;
};

}  // namespace nk
