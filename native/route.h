// Route facts shared by the list call and the event stream (the same typed object in both).
#pragma once
#include <napi.h>
#include <netlink/route/route.h>

#include <cstdint>
#include <string>

namespace nk {

struct RouteInfo {
  int family = 0, dstLen = 0, scope = 0, protocol = 0, type = 0, index = 0;
  uint32_t table = 0, metric = 0;
  std::string dst, gateway, src;
};

RouteInfo ReadRoute(rtnl_route* r);
Napi::Object RouteToJs(Napi::Env env, const RouteInfo& r);

}  // namespace nk
