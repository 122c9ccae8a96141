// Routes (IPv4 and IPv6): add, replace, delete, list. The ip(8) equivalents are in lib/routes.ts.
#include "route.h"

#include <linux/rtnetlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "rtnl/dump.h"
#include "rtnl/holders.h"
#include "rtnl/message.h"

namespace nk {

namespace {

// Names of the lightweight-tunnel encapsulations (LWTUNNEL_ENCAP_*), as `ip route` prints them.
std::string EncapName(uint16_t type) {
  static const char* const names[] = {"none", "mpls", "ip", "ila", "ip6", "seg6", "bpf", "seg6local", "rpl", "ioam6", "xfrm"};
  if (type < sizeof(names) / sizeof(names[0])) return names[type];
  return std::to_string(type);
}

}  // namespace

std::string RouteEncapType(const nlmsghdr* h) {
  // Read by hand: libnl 3.7 decodes only MPLS encapsulation, and a route it cannot decode is
  // listed from the rest of its message (rtnl/dump.h), where the type is still there.
  if (!nlmsg_valid_hdr(h, sizeof(rtmsg))) return "";
  nlattr* a = nlmsg_find_attr(const_cast<nlmsghdr*>(h), sizeof(rtmsg), RTA_ENCAP_TYPE);
  if (a == nullptr || nla_len(a) < static_cast<int>(sizeof(uint16_t))) return "";
  return EncapName(nla_get_u16(a));
}

RouteInfo ReadRoute(rtnl_route* r, const nlmsghdr* h) {
  RouteInfo info = ReadRoute(r);
  if (h != nullptr) info.encap = RouteEncapType(h);
  return info;
}

RouteInfo ReadRoute(rtnl_route* r) {
  RouteInfo info;
  info.family = rtnl_route_get_family(r);
  nl_addr* dst = rtnl_route_get_dst(r);
  info.dstLen = dst ? nl_addr_get_prefixlen(dst) : 0;
  info.dst = AddrToString(dst);
  if (info.dst.empty()) info.dst = info.family == AF_INET6 ? "::" : "0.0.0.0";
  info.table = rtnl_route_get_table(r);
  info.metric = rtnl_route_get_priority(r);
  info.scope = rtnl_route_get_scope(r);
  info.protocol = rtnl_route_get_protocol(r);
  info.type = rtnl_route_get_type(r);
  info.src = AddrToString(rtnl_route_get_pref_src(r));
  if (rtnl_route_get_nnexthops(r) > 0) {
    rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
    info.index = rtnl_route_nh_get_ifindex(nh);
    info.gateway = AddrToString(rtnl_route_nh_get_gateway(nh));
  }
  return info;
}

Napi::Object RouteToJs(Napi::Env env, const RouteInfo& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", r.family);
  o.Set("dst", r.dst);
  o.Set("dstLen", r.dstLen);
  o.Set("gateway", r.gateway);
  o.Set("index", r.index);
  o.Set("table", r.table);
  o.Set("metric", r.metric);
  o.Set("scope", r.scope);
  o.Set("protocol", r.protocol);
  o.Set("type", r.type);
  o.Set("src", r.src);
  if (!r.encap.empty()) {
    Napi::Object encap = Napi::Object::New(env);
    encap.Set("type", r.encap);
    o.Set("encap", encap);
  }
  return o;
}

RouteSpec ReadRouteSpec(const Napi::Object& o) {
  RouteSpec r;
  r.family = static_cast<int>(OptInt(o, "family").value_or(AF_INET));
  r.dst = String(o, "dst");
  r.dstLen = static_cast<int>(OptInt(o, "dstLen").value_or(0));
  r.gateway = String(o, "gateway");
  r.src = String(o, "src");
  r.metric = OptInt(o, "metric");
  r.table = OptInt(o, "table");
  r.scope = OptInt(o, "scope");
  r.protocol = OptInt(o, "protocol");
  r.type = OptInt(o, "type");
  return r;
}

namespace {

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, RouteChange change)
      : ns_(std::move(ns)), change_(change), spec_(ReadRouteSpec(o)), dev_(String(o, "dev")) {}

  void Execute() override {
    const char* op = change_ == RouteChange::kAdd ? "add route" : change_ == RouteChange::kReplace ? "replace route" : "delete route";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    if (!dev_.empty() && !LookupIfIndex(lease, dev_, &spec_.index, &error)) return;
    NlMsg msg = RouteRequest(spec_, change_, op, &error);
    if (!msg) return;
    std::string what = spec_.dst + "/" + std::to_string(spec_.dstLen);
    if (!spec_.gateway.empty()) what += " via " + spec_.gateway;
    if (!dev_.empty()) what += " dev " + dev_;
    if (!lease.Transact(std::move(msg), op, what, &error) && change_ == RouteChange::kDelete && error.err == ESRCH) {
      error.err = ENOENT;  // "not there" reads the same for every object kind
    }
  }

 private:
  std::string ns_;
  RouteChange change_;
  RouteSpec spec_;
  std::string dev_;
};

class ListJob : public Job {
 public:
  ListJob(std::string ns, int family) : ns_(std::move(ns)), family_(family) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    // Not a libnl route cache: it keeps one route per (table, prefix, metric) and would drop
    // IPv6's per-link twins (fe80::/64 on every link). See nl_dump.h.
    DumpEach(
        lease, RTM_GETROUTE, family_, "list routes", &error, [&] { routes_.clear(); },
        [&](nl_object* o, const nlmsghdr* h) {
          auto* r = reinterpret_cast<rtnl_route*>(o);
          int f = rtnl_route_get_family(r);
          if (f == AF_INET || f == AF_INET6) routes_.push_back(ReadRoute(r, h));
        });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, routes_.size());
    for (size_t i = 0; i < routes_.size(); i++) out.Set(i, RouteToJs(env, routes_[i]));
    return out;
  }

 private:
  std::string ns_;
  int family_;
  std::vector<RouteInfo> routes_;
};

Napi::Value Change(const Napi::CallbackInfo& info, RouteChange change) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), change));
}
Napi::Value Add(const Napi::CallbackInfo& info) { return Change(info, RouteChange::kAdd); }
Napi::Value Replace(const Napi::CallbackInfo& info) { return Change(info, RouteChange::kReplace); }
Napi::Value Delete(const Napi::CallbackInfo& info) { return Change(info, RouteChange::kDelete); }
Napi::Value List(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ListJob>(info[0].As<Napi::String>(), info[1].As<Napi::Number>().Int32Value()));
}

}  // namespace

void InitRoute(Napi::Env env, Napi::Object exports) {
  exports.Set("routeAdd", Napi::Function::New(env, Add));
  exports.Set("routeReplace", Napi::Function::New(env, Replace));
  exports.Set("routeDelete", Napi::Function::New(env, Delete));
  exports.Set("routeList", Napi::Function::New(env, List));
}

}  // namespace nk
