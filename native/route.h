// Route facts shared by the list call and the event stream (the same typed object in both).
#pragma once
#include <linux/netlink.h>
#include <napi.h>
#include <linux/netlink.h>
#include <netlink/route/route.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rtnl/message.h"

namespace nk {

// One hop of a multipath route (RTA_MULTIPATH); `weight` as ip(8) shows it (rtnh_hops + 1).
struct RouteHop {
  std::string gateway;
  int index = 0, weight = 1;
};

struct RouteInfo {
  int family = 0, dstLen = 0, scope = 0, protocol = 0, type = 0, index = 0;
  uint32_t table = 0, metric = 0, nhid = 0;
  std::string dst, gateway, src;
  std::string encap;  // lightweight-tunnel encapsulation type ("seg6", "mpls", ...), "" for none
  // Every hop when the route has more than one (then gateway/index are the first hop's).
  std::vector<RouteHop> hops;
};

// `hdr` (optional): the message the route came from, for attributes libnl 3.7 does not decode
// (RTA_NH_ID, RTA_ENCAP_TYPE).
RouteInfo ReadRoute(rtnl_route* r, const nlmsghdr* hdr = nullptr);
// A route as lib/routes.ts hands it over (NativeRouteChange; the bulk path's BulkRoute is the same
// with `devIndex`): every field but the device and the hops' devices, which the caller resolves.
RouteSpec ReadRouteSpec(const Napi::Object& o);
// The RTA_ENCAP_TYPE of a route message, by name; "" when it has none.
std::string RouteEncapType(const nlmsghdr* h);
Napi::Object RouteToJs(Napi::Env env, const RouteInfo& r);

}  // namespace nk
