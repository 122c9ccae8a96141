// Route facts shared by the list call and the event stream (the same typed object in both).
#pragma once
#include <napi.h>
#include <linux/netlink.h>
#include <netlink/route/route.h>

#include <cstdint>
#include <string>

#include "rtnl/message.h"

namespace nk {

struct RouteInfo {
  int family = 0, dstLen = 0, scope = 0, protocol = 0, type = 0, index = 0;
  uint32_t table = 0, metric = 0;
  std::string dst, gateway, src;
  std::string encap;  // lightweight-tunnel encapsulation type ("seg6", "mpls", ...), "" for none
};

RouteInfo ReadRoute(rtnl_route* r);
// ReadRoute plus what only the message `h` it was decoded from tells (the encapsulation type).
RouteInfo ReadRoute(rtnl_route* r, const nlmsghdr* h);
// A route as lib/routes.ts hands it over (NativeRouteChange; the bulk path's BulkRoute is the same
// with `devIndex`): every field but the device, which the caller resolves.
RouteSpec ReadRouteSpec(const Napi::Object& o);
// The RTA_ENCAP_TYPE of a route message, by name; "" when it has none.
std::string RouteEncapType(const nlmsghdr* h);
Napi::Object RouteToJs(Napi::Env env, const RouteInfo& r);

}  // namespace nk
