// Request builders shared by the per-operation jobs (addr.cc, route.cc, link.cc) and the bulk
// path: one place turns an address or a route into its rtnetlink message, through libnl's
// rtnl_*_build_*_request, so both paths send exactly the same thing.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../op_error.h"
#include "holders.h"

namespace nk {

// `ip link set dev NAME up` (by ifindex when `index` is set, else by name): RTM_NEWLINK without
// NLM_F_CREATE changes the existing link.
NlMsg LinkUpRequest(int index, const std::string& name, OpError* err);

struct AddrSpec {
  int index = 0, family = 0, prefixlen = 0;
  std::string address, broadcast, label;
  std::optional<int64_t> scope;
  bool noDad = false;
};

// `ip address add|replace|del ADDRESS/PREFIXLEN dev INDEX ...`. `flags` for an add (NLM_F_CREATE |
// NLM_F_EXCL or NLM_F_REPLACE); null with EINVAL/ENOMEM in `err` (as `op`) on failure.
NlMsg AddrRequest(const AddrSpec& s, bool add, int flags, const char* op, OpError* err);

// One hop of a multipath route: `index` the device (0 for none), `weight` as ip(8) writes it (1-256).
struct RouteSpecHop {
  std::string gateway;
  int index = 0, weight = 1;
};

struct RouteSpec {
  int family = 0, dstLen = 0;
  int index = 0;  // the nexthop's device; 0 for none
  std::string dst, gateway, src;
  std::optional<int64_t> metric, table, scope, protocol, type;
  std::optional<int64_t> nhid;     // a nexthop object (RTA_NH_ID) instead of gateway/device
  std::vector<RouteSpecHop> hops;  // multipath (RTA_MULTIPATH), besides or instead of gateway/index
};

enum class RouteChange { kAdd, kReplace, kDelete };

// `ip route add|replace|del DST/LEN [via GATEWAY] [dev INDEX] ...`. Null with EINVAL in `err` (as
// `op`, naming the field that does not parse) on failure.
NlMsg RouteRequest(const RouteSpec& r, RouteChange change, const char* op, OpError* err);

}  // namespace nk
