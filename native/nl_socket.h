// One rtnetlink socket per network namespace, opened inside it and reused from any worker thread.
// A socket created in a namespace stays bound to it, so ordinary operations need no setns at all.
#pragma once
#include <netlink/netlink.h>
#include <netlink/cache.h>
#include <netlink/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "ns_enter.h"
#include "op_error.h"
#include "rtnl/holders.h"

#if defined(DEBUG) || defined(__SANITIZE_ADDRESS__)
#define NK_CHECK_LEASES 1
#endif

namespace nk {

class NsSocket {
 public:
  ~NsSocket();
  nl_sock* sk = nullptr;
  NsId id;
  std::mutex mu;          // libnl sockets are not thread-safe: one transaction at a time
  OpError* current = nullptr;  // where the error callback records errno and extack
  bool broken = false;         // set after a local libnl failure; the cache drops the socket
};

// A locked socket for the namespace at `path` ("" is the process's own namespace). Holding the
// lease keeps the socket open and locked.
//
// Lock discipline: a thread holds at most one lease at a time (take one, give it back, take the
// next). Holding A while waiting for B deadlocks against a job doing B then A. Debug and sanitizer
// builds abort when a second lease is asked for (NK_CHECK_LEASES).
class SocketLease {
 public:
  SocketLease(const std::string& path, OpError* err);
  ~SocketLease();
  bool ok() const { return s_ != nullptr; }
  nl_sock* sk() const { return s_->sk; }
  // Sends `msg` (consumed) and waits for the kernel's answer. On failure fills `err` with the real
  // errno and the extended-ack text, with `op` as the operation name. Returns false on failure.
  bool Transact(nl_msg* msg, const char* op, const std::string& what, OpError* err);
  bool Transact(NlMsg msg, const char* op, const std::string& what, OpError* err) {
    return Transact(msg.release(), op, what, err);
  }
  // Runs a libnl call that talks to the kernel, recording errno/extack of a failure. (Dumps, with
  // their retry when interrupted, are DumpEach in rtnl/dump.h.)
  template <typename F>
  bool Call(const char* op, const std::string& what, OpError* err, F&& fn);
  // Sends `msg` (consumed) and hands every reply message to `on_reply` until the kernel's ack;
  // for requests answered with data (RTM_GETNSID, ...).
  bool Request(nl_msg* msg, const char* op, const std::string& what, OpError* err, int (*on_reply)(nl_msg*, void*), void* arg);

 private:
  bool Finish(int rc, const char* op, const std::string& what, OpError* err);
  std::shared_ptr<NsSocket> s_;
  std::unique_lock<std::mutex> lock_;
};

// Counters for tests and diagnostics.
struct NlStats {
  std::atomic<uint64_t> dumpRetries{0};
  std::atomic<uint64_t> socketsOpened{0};
};
extern NlStats nl_stats;

template <typename F>
bool SocketLease::Call(const char* op, const std::string& what, OpError* err, F&& fn) {
  {
    OpError local;
    s_->current = &local;
    int rc = fn(s_->sk);
    s_->current = nullptr;
    if (rc >= 0) return true;
    if (local.failed()) {
      local.op = op;
      if (local.detail.empty()) local.detail = what;
      *err = local;
      return false;
    }
    // libnl itself failed (a short read, a stray message): this socket's stream may be out of
    // step, so it is not reused.
    s_->broken = true;
    return Finish(rc, op, what, err);
  }
}

// Opens the socket of namespace `path` from a thread that is inside it right now (the job that
// created it) and caches it, so the first operation there needs no namespace switch.
bool CacheSocketHere(const std::string& path, OpError* err);
// Closes cached sockets: of one namespace (`path`), or all idle ones when `path` is empty.
void ReleaseSockets(const std::string& path);
// Closes idle sockets whose namespace path no longer names the namespace they were opened in;
// returns how many. lib/native.ts calls it periodically.
size_t SweepSockets();
// Upper bound on sockets kept open at once; idle ones beyond it are closed (least recently used).
void SetSocketCacheLimit(size_t limit);
size_t OpenSocketCount();

}  // namespace nk
