// Dumps and the decoding of rtnetlink messages into libnl objects, shared by the list calls, the
// event streams (watch.cc) and the bulk path.
//
// Without a libnl cache: a cache keeps one object per libnl identity and silently drops the rest
// (IPv6 keeps one route per link for the same prefix, fe80::/64 on every link, which a route cache
// collapses into one), and a message its parser refuses aborts the whole cache fill. Parsing
// message by message keeps every object the kernel sends.
#pragma once
#include <linux/netlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>

#include <functional>

#include "../nl_socket.h"
#include "../op_error.h"

namespace nk {

// Called with every object decoded from a message, and the message it came from (for what libnl
// does not decode, e.g. the route encapsulation type).
using EachObject = std::function<void(nl_object*, const nlmsghdr*)>;

// Decodes one rtnetlink message (link, address, route, neighbour) with libnl's parser. A message
// libnl cannot decode in full (an attribute it does not know how to read, e.g. a seg6 route
// encapsulation) is not dropped: it is decoded again without the attributes that make the parser
// fail, so the object is still listed with everything else it carries. `msg` must have
// NETLINK_ROUTE as its protocol.
void ParseObjects(nl_msg* msg, const EachObject& each);
// The same for a message read from a raw socket.
void ParseObjects(const nlmsghdr* h, const EachObject& each);

// How often a dump interrupted by concurrent changes is done again before giving up with EAGAIN.
constexpr int kDumpAttempts = 64;

enum class DumpResult { kDone, kInterrupted, kFailed };

// The one retry loop for dumps: runs `once` (a whole dump; kFailed with `err` filled, or
// kInterrupted when the kernel marked it with NLM_F_DUMP_INTR because the table changed meanwhile)
// until it completes, calling `restart` before each attempt to forget what a broken one delivered.
// Gives up with EAGAIN after kDumpAttempts.
bool DumpWithRetry(const char* op, OpError* err, const std::function<void()>& restart,
                   const std::function<DumpResult()>& once);

// One RTM_GET* dump request for `family` on `sk`, every object of the answer passed to `each`.
// Returns a libnl error code (< 0), -NLE_DUMP_INTR when the table changed during the dump. The
// socket's own callbacks (its error handler) stay in force.
int DumpObjects(nl_sock* sk, int type, int family, const EachObject& each);

// DumpObjects on a namespace's cached socket, with the lease's error capture, retried by
// DumpWithRetry.
bool DumpEach(SocketLease& lease, int request, int family, const char* op, OpError* err,
              const std::function<void()>& restart, const EachObject& each);

}  // namespace nk
