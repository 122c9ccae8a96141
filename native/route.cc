// Routes (IPv4 and IPv6): add, replace, delete, list. The ip(8) equivalents are in lib/routes.ts.
#include "route.h"

#include <linux/rtnetlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "nl_raw.h"
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

RouteInfo ReadRoute(rtnl_route* r, const nlmsghdr* hdr) {
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
  int n = rtnl_route_get_nnexthops(r);
  if (n > 0) {
    rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
    info.index = rtnl_route_nh_get_ifindex(nh);
    info.gateway = AddrToString(rtnl_route_nh_get_gateway(nh));
  }
  // A multipath route (RTA_MULTIPATH): every hop with its weight, not only the first.
  if (n > 1) {
    for (int i = 0; i < n; i++) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, i);
      RouteHop hop;
      hop.index = rtnl_route_nh_get_ifindex(nh);
      hop.gateway = AddrToString(rtnl_route_nh_get_gateway(nh));
      hop.weight = rtnl_route_nh_get_weight(nh) + 1;  // the kernel carries weight - 1 (rtnh_hops)
      info.hops.push_back(std::move(hop));
    }
  }
  if (hdr != nullptr && hdr->nlmsg_len >= NLMSG_LENGTH(sizeof(rtmsg))) {
    if (nlattr* a = FindAttr(hdr, sizeof(rtmsg), RTA_NH_ID); a && nla_len(a) >= 4) info.nhid = nla_get_u32(a);
  }
  if (hdr != nullptr) info.encap = RouteEncapType(hdr);
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
  if (r.nhid) o.Set("nhid", r.nhid);
  if (!r.hops.empty()) {
    Napi::Array hops = Napi::Array::New(env, r.hops.size());
    for (size_t i = 0; i < r.hops.size(); i++) {
      Napi::Object h = Napi::Object::New(env);
      h.Set("gateway", r.hops[i].gateway);
      h.Set("index", r.hops[i].index);
      h.Set("weight", r.hops[i].weight);
      hops.Set(i, h);
    }
    o.Set("nexthops", hops);
  }
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
  r.nhid = OptInt(o, "nhid");
  return r;
}

namespace {

std::optional<Napi::Array> ArrayField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return std::nullopt;
  return v.As<Napi::Array>();
}

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, RouteChange change)
      : ns_(std::move(ns)), change_(change), spec_(ReadRouteSpec(o)), dev_(String(o, "dev")) {
    // The hops' devices are names here; resolved to indexes in Execute, as `dev` is.
    if (auto hops = ArrayField(o, "nexthops")) {
      for (uint32_t i = 0; i < hops->Length(); i++) {
        Napi::Object h = hops->Get(i).As<Napi::Object>();
        spec_.hops.push_back({String(h, "gateway"), 0, static_cast<int>(OptInt(h, "weight").value_or(1))});
        hopDevs_.push_back(String(h, "dev"));
      }
    }
  }

  void Execute() override {
    const char* op = change_ == RouteChange::kAdd ? "add route" : change_ == RouteChange::kReplace ? "replace route" : "delete route";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    if (!dev_.empty() && !LookupIfIndex(lease, dev_, &spec_.index, &error)) return;
    for (size_t i = 0; i < spec_.hops.size(); i++) {
      if (!hopDevs_[i].empty() && !LookupIfIndex(lease, hopDevs_[i], &spec_.hops[i].index, &error)) return;
    }
    NlMsg msg = RouteRequest(spec_, change_, op, &error);
    if (!msg) return;
    std::string what = spec_.dst + "/" + std::to_string(spec_.dstLen);
    if (!spec_.gateway.empty()) what += " via " + spec_.gateway;
    if (!dev_.empty()) what += " dev " + dev_;
    if (spec_.nhid) what += " nhid " + std::to_string(*spec_.nhid);
    if (!lease.Transact(std::move(msg), op, what, &error) && change_ == RouteChange::kDelete && error.err == ESRCH) {
      error.err = ENOENT;  // "not there" reads the same for every object kind
    }
  }

 private:
  std::string ns_;
  RouteChange change_;
  RouteSpec spec_;
  std::string dev_;
  std::vector<std::string> hopDevs_;
};

class ListJob : public Job {
 public:
  ListJob(std::string ns, int family) : ns_(std::move(ns)), family_(family) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    // Not a libnl route cache: it keeps one route per (table, prefix, metric) and would drop
    // IPv6's per-link twins (fe80::/64 on every link). See rtnl/dump.h.
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


// RTM_GETROUTE for one destination, as `ip route get`: the kernel resolves it through the rules
// and tables and answers with one route. RTM_F_LOOKUP_TABLE makes it report the table the route
// was found in (without it the answer says "main" whatever the table). The kernel takes no table
// to look in (RTA_TABLE is ignored here): lib/routes.ts does a one-table look-up itself.
class GetJob : public Job {
 public:
  GetJob(std::string ns, const Napi::Object& o) : ns_(std::move(ns)) {
    family_ = static_cast<int>(OptInt(o, "family").value_or(AF_INET));
    dst_ = String(o, "dst");
    from_ = String(o, "from");
    iif_ = String(o, "iif");
    oif_ = String(o, "oif");
    mark_ = OptInt(o, "mark");
  }

  void Execute() override {
    const char* op = "get route";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int bits = family_ == AF_INET6 ? 128 : 32;
    rtmsg rtm{};
    rtm.rtm_family = static_cast<uint8_t>(family_);
    rtm.rtm_dst_len = static_cast<uint8_t>(bits);
    rtm.rtm_src_len = from_.empty() ? 0 : static_cast<uint8_t>(bits);
    rtm.rtm_flags = RTM_F_LOOKUP_TABLE;
    int iif = 0, oif = 0;
    if (!iif_.empty() && !LookupIfIndex(lease, iif_, &iif, &error)) return;
    if (!oif_.empty() && !LookupIfIndex(lease, oif_, &oif, &error)) return;
    NlAddr dst = ParseAddr(dst_, family_);
    NlAddr from = from_.empty() ? NlAddr() : ParseAddr(from_, family_);
    if (!dst || (!from_.empty() && !from)) {
      error.Set(EINVAL, op, "bad address " + dst_ + " " + from_);
      return;
    }
    nl_msg* msg = nlmsg_alloc_simple(RTM_GETROUTE, 0);
    if (msg == nullptr || nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0 ||
        nla_put_addr(msg, RTA_DST, dst.get()) < 0 || (from && nla_put_addr(msg, RTA_SRC, from.get()) < 0) ||
        (iif && nla_put_u32(msg, RTA_IIF, static_cast<uint32_t>(iif)) < 0) ||
        (oif && nla_put_u32(msg, RTA_OIF, static_cast<uint32_t>(oif)) < 0) ||
        (mark_ && nla_put_u32(msg, RTA_MARK, static_cast<uint32_t>(*mark_)) < 0)) {
      if (msg) nlmsg_free(msg);
      error.Set(ENOMEM, op, dst_);
      return;
    }
    lease.Request(msg, op, dst_, &error, OnReply, this);
    if (!error.failed() && !found_) error.Set(ENETUNREACH, op, dst_);
  }

  Napi::Value Result(Napi::Env env) override { return RouteToJs(env, route_); }

 private:
  static int OnReply(nl_msg* msg, void* arg) {
    auto* self = static_cast<GetJob*>(arg);
    if (nlmsg_hdr(msg)->nlmsg_type != RTM_NEWROUTE) return NL_OK;
    self->hdr_ = nlmsg_hdr(msg);
    nl_msg_parse(msg, OnObject, self);
    return NL_OK;
  }
  static void OnObject(nl_object* o, void* arg) {
    auto* self = static_cast<GetJob*>(arg);
    auto* r = reinterpret_cast<rtnl_route*>(o);
    self->route_ = ReadRoute(r, self->hdr_);
    // With `from`, the answer carries the source as RTA_SRC rather than RTA_PREFSRC.
    if (self->route_.src.empty()) self->route_.src = RawAddrToString(FindAttr(self->hdr_, sizeof(rtmsg), RTA_SRC));
    self->found_ = true;
  }

  std::string ns_;
  int family_;
  std::string dst_, from_, iif_, oif_;
  std::optional<int64_t> mark_;
  const nlmsghdr* hdr_ = nullptr;
  RouteInfo route_;
  bool found_ = false;
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

Napi::Value Get(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<GetJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>()));
}

}  // namespace

void InitRoute(Napi::Env env, Napi::Object exports) {
  exports.Set("routeAdd", Napi::Function::New(env, Add));
  exports.Set("routeReplace", Napi::Function::New(env, Replace));
  exports.Set("routeDelete", Napi::Function::New(env, Delete));
  exports.Set("routeList", Napi::Function::New(env, List));
  exports.Set("routeGet", Napi::Function::New(env, Get));
}

}  // namespace nk
