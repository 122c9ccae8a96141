// Dumps without a libnl cache. A cache keeps one object per libnl identity and silently drops the
// rest: IPv6 keeps one route per link for the same prefix (fe80::/64 on every link), which a
// route cache collapses into one. Parsing message by message keeps every object the kernel sends.
#pragma once
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/rtnl.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>

#include <cerrno>
#include <functional>

#include "nl_socket.h"

namespace nk {

namespace dump_detail {

using Each = std::function<void(nl_object*, const nlmsghdr*)>;

struct Arg {
  const Each* each;
  const nlmsghdr* hdr;
};

inline void OnObject(nl_object* o, void* p) {
  auto* a = static_cast<Arg*>(p);
  (*a->each)(o, a->hdr);
}

inline int OnMessage(nl_msg* msg, void* p) {
  auto* a = static_cast<Arg*>(p);
  a->hdr = nlmsg_hdr(msg);
  nl_msg_parse(msg, OnObject, a);
  return NL_OK;
}

}  // namespace dump_detail

// Sends an RTM_GET* dump request for `family` on `sk` and calls `each` with every object parsed
// from the answer (by the same libnl parsers a cache would use), with the message it came from.
// Returns a libnl error code (< 0), e.g. -NLE_DUMP_INTR when the table changed during the dump.
// The socket's own callbacks (its error handler) stay in force.
inline int DumpObjects(nl_sock* sk, int type, int family, const dump_detail::Each& each) {
  dump_detail::Arg arg{&each, nullptr};
  nl_cb* own = nl_socket_get_cb(sk);  // a counted reference
  nl_cb* cb = nl_cb_clone(own);
  nl_cb_put(own);
  if (cb == nullptr) return -NLE_NOMEM;
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, dump_detail::OnMessage, &arg);
  int rc = nl_rtgen_request(sk, type, family, NLM_F_DUMP);
  if (rc >= 0) rc = nl_recvmsgs(sk, cb);
  nl_cb_put(cb);
  return rc;
}

// DumpObjects on a namespace's cached socket, with the lease's error capture. A dump the kernel
// marks as interrupted (the table changed meanwhile) is done again, `restart` first forgetting
// what the broken one delivered, at most kDumpAttempts times (then EAGAIN).
inline bool DumpEach(SocketLease& lease, int request, int family, const char* op, OpError* err,
                     const std::function<void()>& restart, const dump_detail::Each& each) {
  for (int attempt = 0; attempt < kDumpAttempts; attempt++) {
    restart();
    int rc = 0;
    bool ok = lease.Call(op, "", err, [&](nl_sock* sk) {
      rc = DumpObjects(sk, request, family, each);
      return rc == -NLE_DUMP_INTR ? 0 : rc;
    });
    if (!ok) return false;
    if (rc != -NLE_DUMP_INTR) return true;
    nl_stats.dumpRetries++;
  }
  err->Set(EAGAIN, op, "the table kept changing during every dump");
  return false;
}

}  // namespace nk
