// Address facts shared by the list call and the event stream (the same typed object in both).
#pragma once
#include <napi.h>
#include <netlink/route/addr.h>

#include <cstdint>
#include <string>

namespace nk {

struct AddrInfo {
  int index = 0, family = 0, prefixlen = 0, scope = 0;
  uint32_t flags = 0;
  std::string address, label, peer, broadcast;
};

AddrInfo ReadAddr(rtnl_addr* a);
Napi::Object AddrToJs(Napi::Env env, const AddrInfo& a);

}  // namespace nk
