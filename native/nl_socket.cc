#include "nl_socket.h"

#include "rtnl/extack.h"

#include <linux/netlink.h>
#include <netlink/msg.h>
#include <netlink/route/rtnl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <list>
#include <map>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace nk {

NlStats nl_stats;

namespace {

std::mutex cache_mu;
// path -> socket; `lru` keeps the order of use for eviction.
std::map<std::string, std::shared_ptr<NsSocket>> cache;
std::list<std::string> lru;
size_t cache_limit = 64;

// libnl folds errnos into NLE_* codes; this callback keeps the kernel's own errno and its
// extended-ack message (libnl 3.7 has no API for the latter).
int OnNetlinkError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  auto* s = static_cast<NsSocket*>(arg);
  if (s->current == nullptr || e->error == 0) return NL_STOP;
  s->current->err = -e->error;
  s->current->extack = ExtackOf(reinterpret_cast<nlmsghdr*>(reinterpret_cast<char*>(e) - NLMSG_HDRLEN));
  return NL_STOP;
}

// `enter`: false when the calling thread is already in that namespace (a creating job).
std::shared_ptr<NsSocket> OpenSocket(const std::string& ref, const NsId& id, OpError* err, bool enter = true) {
  const std::string path = NsPath(ref);
  auto s = std::make_shared<NsSocket>();
  nl_stats.socketsOpened++;
  s->id = id;
  s->sk = nl_socket_alloc();
  if (s->sk == nullptr) {
    err->Set(ENOMEM, "open netlink socket", path);
    return nullptr;
  }
  {
    // The socket belongs to the namespace of the thread that creates it.
    NsGuard guard(enter ? ref : std::string(), err);
    if (!guard.ok()) return nullptr;
    int rc = nl_connect(s->sk, NETLINK_ROUTE);
    if (rc < 0) {
      err->Set(errno ? errno : EIO, "open netlink socket", path);
      return nullptr;
    }
  }
  int fd = nl_socket_get_fd(s->sk);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  nl_socket_set_buffer_size(s->sk, 1 << 20, 1 << 20);
  nl_socket_modify_err_cb(s->sk, NL_CB_CUSTOM, OnNetlinkError, s.get());
  return s;
}

void EvictIdleLocked() {
  for (auto it = lru.begin(); cache.size() > cache_limit && it != lru.end();) {
    auto c = cache.find(*it);
    if (c != cache.end() && c->second.use_count() == 1) {
      cache.erase(c);
      it = lru.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

NsSocket::~NsSocket() {
  if (sk != nullptr) nl_socket_free(sk);
}

#ifdef NK_CHECK_LEASES
namespace {
// Leases the calling thread holds. More than one at a time can deadlock: a job holding A and
// waiting for B against a job holding B and waiting for A.
thread_local int leases_held = 0;
}  // namespace
#endif

SocketLease::SocketLease(const std::string& path, OpError* err) {
#ifdef NK_CHECK_LEASES
  if (leases_held != 0) {
    fprintf(stderr, "netns-kit: a job asked for the socket lease of %s while holding another (lock order)\n", path.c_str());
    abort();
  }
#endif
  // `ref` may carry the identity its handle was made for (ESTALE when the path now holds another
  // namespace): checked here against the path, and again on the descriptor a new socket is
  // opened through. The cache is keyed by the plain path.
  const std::string& ref = path;
  const std::string key = NsPath(ref);
  NsId id;
  if (!key.empty() && !NsIdOfPath(ref, &id, err)) return;
  std::shared_ptr<NsSocket> s;
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(key);
    // The same path may now name a different namespace (deleted and re-created by someone else).
    if (it != cache.end() && it->second->id == id) {
      s = it->second;
      lru.remove(key);
      lru.push_back(key);
    }
  }
  if (!s) {
    s = OpenSocket(ref, id, err);
    if (!s) return;
    std::lock_guard<std::mutex> lock(cache_mu);
    cache[key] = s;
    lru.remove(key);
    lru.push_back(key);
    EvictIdleLocked();
  }
  lock_ = std::unique_lock<std::mutex>(s->mu);
  s_ = std::move(s);
#ifdef NK_CHECK_LEASES
  leases_held++;
#endif
}

SocketLease::~SocketLease() {
  if (!s_) return;
#ifdef NK_CHECK_LEASES
  leases_held--;
#endif
  bool broken = s_->broken;
  if (lock_.owns_lock()) lock_.unlock();
  if (broken) {
    std::lock_guard<std::mutex> lock(cache_mu);
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->second == s_) {
        lru.remove(it->first);
        cache.erase(it);
        break;
      }
    }
  }
}

namespace {
int StopOnAck(nl_msg*, void* arg) {
  *static_cast<bool*>(arg) = true;
  return NL_STOP;
}
}  // namespace

bool SocketLease::Request(nl_msg* msg, const char* op, const std::string& what, OpError* err,
                          int (*on_reply)(nl_msg*, void*), void* arg) {
  return Call(op, what, err, [&](nl_sock* sk) {
    if (msg == nullptr) return -NLE_INVAL;
    int rc = nl_send_auto(sk, msg);
    nlmsg_free(msg);
    msg = nullptr;
    if (rc < 0) return rc;
    NlCb cb = CloneSocketCb(sk);
    if (!cb) return -NLE_NOMEM;
    bool acked = false;
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_reply, arg);
    nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, StopOnAck, &acked);
    // The reply and the ack may arrive in separate reads; nl_recvmsgs returns after each one.
    do {
      rc = nl_recvmsgs(sk, cb.get());
    } while (rc >= 0 && !acked);
    return rc;
  });
}

bool SocketLease::Finish(int rc, const char* op, const std::string& what, OpError* err) {
  // No errno from the kernel's answer: the failure was reported by libnl itself.
  int e;
  switch (-rc) {
    case NLE_NOMEM: e = ENOMEM; break;
    case NLE_INVAL: case NLE_MSG_TOOSHORT: case NLE_MSG_TRUNC: e = EINVAL; break;
    case NLE_OBJ_NOTFOUND: case NLE_NOADDR: e = ENOENT; break;
    case NLE_EXIST: e = EEXIST; break;
    case NLE_PERM: case NLE_NOACCESS: e = EPERM; break;
    case NLE_BUSY: e = EBUSY; break;
    case NLE_OPNOTSUPP: e = EOPNOTSUPP; break;
    case NLE_AGAIN: e = EAGAIN; break;
    case NLE_DUMP_INTR: e = EINTR; break;
    case NLE_NODEV: e = ENODEV; break;
    default: e = EIO;
  }
  err->Set(e, op, what.empty() ? nl_geterror(rc) : what + ": " + nl_geterror(rc));
  return false;
}

bool SocketLease::Transact(nl_msg* msg, const char* op, const std::string& what, OpError* err) {
  return Call(op, what, err, [&msg](nl_sock* sk) {
    if (msg == nullptr) return -NLE_INVAL;
    int rc = nl_send_auto(sk, msg);
    nlmsg_free(msg);
    msg = nullptr;
    if (rc < 0) return rc;
    return nl_wait_for_ack(sk);
  });
}

bool CacheSocketHere(const std::string& path, OpError* err) {
  NsId id;
  if (!NsIdOfPath(path, &id, err)) return false;
  std::shared_ptr<NsSocket> s = OpenSocket(path, id, err, false);
  if (!s) return false;
  std::lock_guard<std::mutex> lock(cache_mu);
  cache[path] = s;
  lru.remove(path);
  lru.push_back(path);
  EvictIdleLocked();
  return true;
}

void ReleaseSockets(const std::string& ref) {
  const std::string path = NsPath(ref);
  std::lock_guard<std::mutex> lock(cache_mu);
  if (!path.empty()) {
    cache.erase(path);
    lru.remove(path);
    return;
  }
  for (auto it = cache.begin(); it != cache.end();) {
    if (it->second.use_count() == 1) {
      lru.remove(it->first);
      it = cache.erase(it);
    } else {
      ++it;
    }
  }
}

size_t SweepSockets() {
  std::lock_guard<std::mutex> lock(cache_mu);
  size_t dropped = 0;
  for (auto it = cache.begin(); it != cache.end();) {
    NsId now;
    OpError ignored;
    // A socket holds its namespace alive: once the name is gone (deleted by another process, or
    // by `ip netns delete`) or names another namespace, an idle socket must not keep it.
    bool stale = !it->first.empty() && it->second.use_count() == 1 &&
                 (!NsIdOfPath(it->first, &now, &ignored) || !(now == it->second->id));
    if (stale) {
      lru.remove(it->first);
      it = cache.erase(it);
      dropped++;
    } else {
      ++it;
    }
  }
  return dropped;
}

void SetSocketCacheLimit(size_t limit) {
  std::lock_guard<std::mutex> lock(cache_mu);
  cache_limit = limit;
  EvictIdleLocked();
}

size_t OpenSocketCount() {
  std::lock_guard<std::mutex> lock(cache_mu);
  return cache.size();
}

}  // namespace nk
