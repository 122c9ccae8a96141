// Link facts shared by the list call and the event stream (the same typed object in both).
#pragma once
#include <napi.h>
#include <netlink/route/link.h>

#include <cstdint>
#include <string>

#include "rtnl/holders.h"
#include "nl_socket.h"

namespace nk {

struct LinkInfo {
  int index = 0;
  std::string name, kind, mac, operstate;
  uint32_t mtu = 0, flags = 0, master = 0, group = 0;
  int peerIndex = 0;       // IFLA_LINK: the veth peer, or the lower device of macvlan/vxlan
  int32_t linkNetnsId = -1;  // IFLA_LINK_NETNSID: where that peer lives, when not here
  // IFLA_STATS64 counters (libnl falls back to IFLA_STATS where the kernel sends only that)
  uint64_t rxBytes = 0, rxPackets = 0, rxErrors = 0, rxDropped = 0, txBytes = 0, txPackets = 0, txErrors = 0,
           txDropped = 0, multicast = 0, collisions = 0;
};

LinkInfo ReadLink(rtnl_link* link);
Napi::Object LinkToJs(Napi::Env env, const LinkInfo& l);
// `stats`: include the counters (links.list({ stats: true }), links.stats()).
Napi::Object LinkToJsStats(Napi::Env env, const LinkInfo& l, bool stats);

NlPtr<rtnl_link> GetLinkByName(SocketLease& lease, const std::string& name, OpError* err);
// RTM_GETLINK by name: the interface index, or false with ENOENT ("no such link").
bool LookupIfIndex(SocketLease& lease, const std::string& name, int* index, OpError* err);

}  // namespace nk
