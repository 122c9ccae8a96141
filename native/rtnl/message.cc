#include "message.h"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <cerrno>

namespace nk {

NlMsg LinkUpRequest(int index, const std::string& name, OpError* err) {
  NlPtr<rtnl_link> change(rtnl_link_alloc());
  if (index != 0) rtnl_link_set_ifindex(change.get(), index);
  else rtnl_link_set_name(change.get(), name.c_str());
  rtnl_link_set_flags(change.get(), IFF_UP);
  nl_msg* msg = nullptr;
  if (rtnl_link_build_add_request(change.get(), 0, &msg) < 0) {
    err->Set(ENOMEM, "set link up", name);
    return nullptr;
  }
  return NlMsg(msg);
}

NlMsg AddrRequest(const AddrSpec& s, bool add, int flags, const char* op, OpError* err) {
  NlPtr<rtnl_addr> addr(rtnl_addr_alloc());
  NlAddr local = ParseAddr(s.address, s.family);
  if (!addr || !local) {
    err->Set(EINVAL, op, "bad address " + s.address);
    return nullptr;
  }
  nl_addr_set_prefixlen(local.get(), s.prefixlen);
  rtnl_addr_set_ifindex(addr.get(), s.index);
  rtnl_addr_set_local(addr.get(), local.get());
  rtnl_addr_set_prefixlen(addr.get(), s.prefixlen);
  if (!s.broadcast.empty()) {
    NlAddr b = ParseAddr(s.broadcast, s.family);
    if (b) rtnl_addr_set_broadcast(addr.get(), b.get());
  }
  if (!s.label.empty()) rtnl_addr_set_label(addr.get(), s.label.c_str());
  if (s.scope) rtnl_addr_set_scope(addr.get(), static_cast<int>(*s.scope));
  if (s.noDad) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  nl_msg* msg = nullptr;
  int rc = add ? rtnl_addr_build_add_request(addr.get(), flags, &msg)
               : rtnl_addr_build_delete_request(addr.get(), 0, &msg);
  if (rc < 0) {
    err->Set(ENOMEM, op, s.address);
    return nullptr;
  }
  return NlMsg(msg);
}

NlMsg RouteRequest(const RouteSpec& r, RouteChange change, const char* op, OpError* err) {
  NlPtr<rtnl_route> route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.family));
  NlAddr dst = ParseAddr(r.dst, r.family);
  if (!dst) {
    err->Set(EINVAL, op, "bad destination " + r.dst);
    return nullptr;
  }
  nl_addr_set_prefixlen(dst.get(), r.dstLen);
  rtnl_route_set_dst(route.get(), dst.get());
  if (r.table) rtnl_route_set_table(route.get(), static_cast<uint32_t>(*r.table));
  if (r.metric) rtnl_route_set_priority(route.get(), static_cast<uint32_t>(*r.metric));
  if (r.scope) rtnl_route_set_scope(route.get(), static_cast<uint8_t>(*r.scope));
  if (r.protocol) rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(*r.protocol));
  if (r.type) rtnl_route_set_type(route.get(), static_cast<uint8_t>(*r.type));
  if (!r.src.empty()) {
    NlAddr src = ParseAddr(r.src, r.family);
    if (!src) {
      err->Set(EINVAL, op, "bad source " + r.src);
      return nullptr;
    }
    rtnl_route_set_pref_src(route.get(), src.get());
  }
  if (!r.gateway.empty() || r.index != 0) {
    NlAddr gw;
    if (!r.gateway.empty() && !(gw = ParseAddr(r.gateway, r.family))) {
      err->Set(EINVAL, op, "bad gateway " + r.gateway);
      return nullptr;
    }
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (r.index != 0) rtnl_route_nh_set_ifindex(nh, r.index);
    if (gw) rtnl_route_nh_set_gateway(nh, gw.get());
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns it from here
  }
  // Multipath: one RTA_MULTIPATH entry per hop, each with its weight (rtnh_hops = weight - 1).
  for (const RouteSpecHop& h : r.hops) {
    NlAddr gw;
    if (!h.gateway.empty() && !(gw = ParseAddr(h.gateway, r.family))) {
      err->Set(EINVAL, op, "bad gateway " + h.gateway);
      return nullptr;
    }
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (h.index != 0) rtnl_route_nh_set_ifindex(nh, h.index);
    if (gw) rtnl_route_nh_set_gateway(nh, gw.get());
    rtnl_route_nh_set_weight(nh, static_cast<uint8_t>(h.weight - 1));
    rtnl_route_add_nexthop(route.get(), nh);
  }
  nl_msg* msg = nullptr;
  int rc;
  if (change == RouteChange::kDelete) {
    rc = rtnl_route_build_del_request(route.get(), 0, &msg);
    // libnl replaces RT_SCOPE_NOWHERE by a guess; a delete without a scope must match any scope,
    // as `ip route del` does, so put it back.
    if (rc >= 0 && !r.scope) static_cast<rtmsg*>(nlmsg_data(nlmsg_hdr(msg)))->rtm_scope = RT_SCOPE_NOWHERE;
  } else {
    int flags = NLM_F_CREATE | (change == RouteChange::kReplace ? NLM_F_REPLACE : NLM_F_EXCL);
    rc = rtnl_route_build_add_request(route.get(), flags, &msg);
  }
  if (rc < 0) {
    err->Set(EINVAL, op, r.dst);
    return nullptr;
  }
  // libnl 3.7 knows no nexthop objects: RTA_NH_ID goes after what it built.
  if (r.nhid && nla_put_u32(msg, RTA_NH_ID, static_cast<uint32_t>(*r.nhid)) < 0) {
    nlmsg_free(msg);
    err->Set(ENOMEM, op, r.dst);
    return nullptr;
  }
  return NlMsg(msg);
}

}  // namespace nk
