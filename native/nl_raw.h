// Requests libnl 3.7 cannot build: a dump whose request carries a full family header (a proxy
// neighbour dump needs ndm_flags = NTF_PROXY; a bridge FDB dump needs ndm_family = AF_BRIDGE)
// or an object kind libnl has no parser for (RTM_GETNEXTHOP). Every message of the answer is
// handed over raw; the caller decodes it (with nl_msg_parse where libnl can, by hand otherwise).
#pragma once
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <arpa/inet.h>

#include <cerrno>
#include <functional>
#include <string>

#include "nl_socket.h"
#include "rtnl/dump.h"

namespace nk {

namespace raw_detail {
using Each = std::function<void(nl_msg*)>;
inline int OnMessage(nl_msg* msg, void* p) {
  (*static_cast<const Each*>(p))(msg);
  return NL_OK;
}
}  // namespace raw_detail

// Sends RTM_GET* `type` with NLM_F_DUMP and `hdr` (len bytes) as its family header on `sk`;
// `each` sees every answer message. Returns a libnl error code (< 0), e.g. -NLE_DUMP_INTR.
inline int RawDumpSock(nl_sock* sk, int type, const void* hdr, size_t len, const raw_detail::Each& each) {
  nl_cb* own = nl_socket_get_cb(sk);  // a counted reference
  nl_cb* cb = nl_cb_clone(own);
  nl_cb_put(own);
  if (cb == nullptr) return -NLE_NOMEM;
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, raw_detail::OnMessage, const_cast<raw_detail::Each*>(&each));
  int rc = nl_send_simple(sk, type, NLM_F_DUMP, const_cast<void*>(hdr), len);
  if (rc >= 0) rc = nl_recvmsgs(sk, cb);
  nl_cb_put(cb);
  return rc;
}

// RawDumpSock on a namespace's cached socket, with the lease's error capture; retried like
// DumpEach when the kernel marks the dump interrupted.
inline bool RawDump(SocketLease& lease, int type, const void* hdr, size_t len, const char* op, OpError* err,
                    const std::function<void()>& restart, const raw_detail::Each& each) {
  for (int attempt = 0; attempt < kDumpAttempts; attempt++) {
    restart();
    int rc = 0;
    bool ok = lease.Call(op, "", err, [&](nl_sock* sk) {
      rc = RawDumpSock(sk, type, hdr, len, each);
      return rc == -NLE_DUMP_INTR ? 0 : rc;
    });
    if (!ok) return false;
    if (rc != -NLE_DUMP_INTR) return true;
    nl_stats.dumpRetries++;
  }
  err->Set(EAGAIN, op, "the table kept changing during every dump");
  return false;
}

// The attribute of `type` after a family header of `hdrlen` bytes, or nullptr.
inline nlattr* FindAttr(const nlmsghdr* h, size_t hdrlen, int type) {
  return nlmsg_find_attr(const_cast<nlmsghdr*>(h), static_cast<int>(hdrlen), type);
}

// An address attribute (4 or 16 bytes) as text, "" for anything else.
inline std::string RawAddrToString(const nlattr* a) {
  if (a == nullptr) return "";
  char buf[INET6_ADDRSTRLEN];
  int len = nla_len(a);
  int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
  if (family == AF_UNSPEC || inet_ntop(family, nla_data(a), buf, sizeof(buf)) == nullptr) return "";
  return buf;
}

}  // namespace nk
