#include "dump.h"

#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/handlers.h>
#include <netlink/route/rtnl.h>
#include <netlink/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "holders.h"

namespace nk {

namespace {

// Size of the fixed family header that precedes the attributes, for the message types whose
// objects we list; 0 for any other type (not decoded again).
size_t FamilyHeaderLen(uint16_t type) {
  switch (type) {
    case RTM_NEWLINK: case RTM_DELLINK: return sizeof(ifinfomsg);
    case RTM_NEWADDR: case RTM_DELADDR: return sizeof(ifaddrmsg);
    case RTM_NEWROUTE: case RTM_DELROUTE: return sizeof(rtmsg);
    case RTM_NEWNEIGH: case RTM_DELNEIGH: return sizeof(ndmsg);
    default: return 0;
  }
}

struct Collected {
  std::vector<NlPtr<nl_object>> objects;
};

void Collect(nl_object* o, void* arg) {
  nl_object_get(o);  // libnl drops its reference after the callback
  static_cast<Collected*>(arg)->objects.emplace_back(o);
}

// Parses a copy of `h` that keeps its family header and only the top-level attributes `keep`
// (offsets into `h`). Returns libnl's result; the objects land in `out`.
int ParseSubset(const nlmsghdr* h, size_t hdrlen, const std::vector<size_t>& keep, Collected* out) {
  const char* base = reinterpret_cast<const char*>(h);
  std::vector<char> buf(NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen));
  memcpy(buf.data(), base, NLMSG_HDRLEN + hdrlen);
  for (size_t off : keep) {
    auto* a = reinterpret_cast<const nlattr*>(base + off);
    size_t at = buf.size();
    buf.resize(at + NLA_ALIGN(a->nla_len));
    memcpy(buf.data() + at, a, a->nla_len);
  }
  auto* copy = reinterpret_cast<nlmsghdr*>(buf.data());
  copy->nlmsg_len = static_cast<uint32_t>(buf.size());
  NlMsg msg(nlmsg_convert(copy));
  if (!msg) return -NLE_NOMEM;
  nlmsg_set_proto(msg.get(), NETLINK_ROUTE);
  out->objects.clear();
  int rc = nl_msg_parse(msg.get(), Collect, out);
  return rc < 0 ? rc : (out->objects.empty() ? -NLE_PARSE_ERR : rc);
}

// A message libnl refused as a whole: keep every top-level attribute that it can decode together
// with the ones kept before it, drop the rest. An attribute is dropped only if adding it makes the
// parser fail, so a single unreadable attribute (RTA_ENCAP of an unknown type) costs only itself.
void ParseTolerant(const nlmsghdr* h, const EachObject& each) {
  size_t hdrlen = FamilyHeaderLen(h->nlmsg_type);
  if (hdrlen == 0 || h->nlmsg_len < NLMSG_LENGTH(hdrlen)) return;
  std::vector<size_t> attrs;
  for (size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen); off + sizeof(nlattr) <= h->nlmsg_len;) {
    auto* a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(h) + off);
    if (a->nla_len < sizeof(nlattr) || off + a->nla_len > h->nlmsg_len) break;
    attrs.push_back(off);
    off += NLA_ALIGN(a->nla_len);
  }
  Collected best;
  std::vector<size_t> keep;
  if (ParseSubset(h, hdrlen, keep, &best) < 0) return;  // not even the fixed header decodes
  for (size_t off : attrs) {
    keep.push_back(off);
    Collected trial;
    if (ParseSubset(h, hdrlen, keep, &trial) >= 0) {
      best = std::move(trial);
    } else {
      keep.pop_back();
    }
  }
  for (auto& o : best.objects) each(o.get(), h);
}

struct ParseArg {
  const EachObject* each;
  const nlmsghdr* h;
};

void Deliver(nl_object* o, void* p) {
  auto* a = static_cast<ParseArg*>(p);
  (*a->each)(o, a->h);
}

}  // namespace

void ParseObjects(nl_msg* msg, const EachObject& each) {
  ParseArg arg{&each, nlmsg_hdr(msg)};
  // libnl's parsers hand the object over only after a successful parse, so a failure has
  // delivered nothing yet.
  if (nl_msg_parse(msg, Deliver, &arg) >= 0) return;
  ParseTolerant(arg.h, each);
}

void ParseObjects(const nlmsghdr* h, const EachObject& each) {
  NlMsg msg(nlmsg_convert(const_cast<nlmsghdr*>(h)));  // copies
  if (!msg) return;
  nlmsg_set_proto(msg.get(), NETLINK_ROUTE);
  ParseArg arg{&each, h};
  if (nl_msg_parse(msg.get(), Deliver, &arg) >= 0) return;
  ParseTolerant(h, each);
}

bool DumpWithRetry(const char* op, OpError* err, const std::function<void()>& restart,
                   const std::function<DumpResult()>& once) {
  for (int attempt = 0; attempt < kDumpAttempts; attempt++) {
    restart();
    switch (once()) {
      case DumpResult::kDone: return true;
      case DumpResult::kFailed: return false;
      case DumpResult::kInterrupted: nl_stats.dumpRetries++; break;
    }
  }
  err->Set(EAGAIN, op, "the table kept changing during every dump");
  return false;
}

namespace {
int OnDumpMessage(nl_msg* msg, void* p) {
  ParseObjects(msg, *static_cast<const EachObject*>(p));
  return NL_OK;
}
}  // namespace

int DumpObjects(nl_sock* sk, int type, int family, const EachObject& each) {
  NlCb cb = CloneSocketCb(sk);
  if (!cb) return -NLE_NOMEM;
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, OnDumpMessage, const_cast<EachObject*>(&each));
  int rc = nl_rtgen_request(sk, type, family, NLM_F_DUMP);
  if (rc >= 0) rc = nl_recvmsgs(sk, cb.get());
  return rc;
}

bool DumpEach(SocketLease& lease, int request, int family, const char* op, OpError* err,
              const std::function<void()>& restart, const EachObject& each) {
  return DumpWithRetry(op, err, restart, [&] {
    int rc = 0;
    bool ok = lease.Call(op, "", err, [&](nl_sock* sk) {
      rc = DumpObjects(sk, request, family, each);
      return rc == -NLE_DUMP_INTR ? 0 : rc;
    });
    if (!ok) return DumpResult::kFailed;
    return rc == -NLE_DUMP_INTR ? DumpResult::kInterrupted : DumpResult::kDone;
  });
}

}  // namespace nk
