// Routes (IPv4 and IPv6): add, replace, delete, list. The ip(8) equivalents are in lib/routes.ts.
#include <linux/rtnetlink.h>
#include <netlink/route/route.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "nl_object.h"

namespace nk {

namespace {

struct RouteInfo {
  int family = 0, dstLen = 0, scope = 0, protocol = 0, type = 0, index = 0;
  uint32_t table = 0, metric = 0;
  std::string dst, gateway, src;
};

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
  return o;
}

enum class Mode { Add, Replace, Delete };

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, Mode mode) : ns_(std::move(ns)), mode_(mode) {
    family_ = static_cast<int>(OptInt(o, "family").value_or(AF_INET));
    dst_ = String(o, "dst");
    dstLen_ = static_cast<int>(OptInt(o, "dstLen").value_or(0));
    gateway_ = String(o, "gateway");
    dev_ = String(o, "dev");
    src_ = String(o, "src");
    metric_ = OptInt(o, "metric");
    table_ = OptInt(o, "table");
    scope_ = OptInt(o, "scope");
    protocol_ = OptInt(o, "protocol");
    type_ = OptInt(o, "type");
  }

  void Execute() override {
    const char* op = mode_ == Mode::Add ? "add route" : mode_ == Mode::Replace ? "replace route" : "delete route";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    NlPtr<rtnl_route> route(rtnl_route_alloc());
    rtnl_route_set_family(route.get(), static_cast<uint8_t>(family_));
    NlAddr dst = ParseAddr(dst_, family_);
    if (!dst) {
      error.Set(EINVAL, op, "bad destination " + dst_);
      return;
    }
    nl_addr_set_prefixlen(dst.get(), dstLen_);
    rtnl_route_set_dst(route.get(), dst.get());
    if (table_) rtnl_route_set_table(route.get(), static_cast<uint32_t>(*table_));
    if (metric_) rtnl_route_set_priority(route.get(), static_cast<uint32_t>(*metric_));
    if (scope_) rtnl_route_set_scope(route.get(), static_cast<uint8_t>(*scope_));
    if (protocol_) rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(*protocol_));
    if (type_) rtnl_route_set_type(route.get(), static_cast<uint8_t>(*type_));
    if (!src_.empty()) {
      NlAddr src = ParseAddr(src_, family_);
      if (!src) {
        error.Set(EINVAL, op, "bad source " + src_);
        return;
      }
      rtnl_route_set_pref_src(route.get(), src.get());
    }
    if (!gateway_.empty() || !dev_.empty()) {
      rtnl_nexthop* nh = rtnl_route_nh_alloc();
      if (!dev_.empty()) {
        int index;
        if (!LookupIfIndex(lease, dev_, &index, &error)) {
          rtnl_route_nh_free(nh);
          return;
        }
        rtnl_route_nh_set_ifindex(nh, index);
      }
      if (!gateway_.empty()) {
        NlAddr gw = ParseAddr(gateway_, family_);
        if (!gw) {
          rtnl_route_nh_free(nh);
          error.Set(EINVAL, op, "bad gateway " + gateway_);
          return;
        }
        rtnl_route_nh_set_gateway(nh, gw.get());
      }
      rtnl_route_add_nexthop(route.get(), nh);  // the route owns it from here
    }
    nl_msg* msg = nullptr;
    int rc;
    if (mode_ == Mode::Delete) {
      rc = rtnl_route_build_del_request(route.get(), 0, &msg);
      // libnl replaces RT_SCOPE_NOWHERE by a guess; a delete without a scope must match any
      // scope, as `ip route del` does, so put it back.
      if (rc >= 0 && !scope_) static_cast<rtmsg*>(nlmsg_data(nlmsg_hdr(msg)))->rtm_scope = RT_SCOPE_NOWHERE;
    } else {
      int flags = NLM_F_CREATE | (mode_ == Mode::Replace ? NLM_F_REPLACE : NLM_F_EXCL);
      rc = rtnl_route_build_add_request(route.get(), flags, &msg);
    }
    if (rc < 0) {
      error.Set(EINVAL, op, dst_);
      return;
    }
    std::string what = dst_ + "/" + std::to_string(dstLen_);
    if (!gateway_.empty()) what += " via " + gateway_;
    if (!dev_.empty()) what += " dev " + dev_;
    if (!lease.Transact(msg, op, what, &error) && mode_ == Mode::Delete && error.err == ESRCH) {
      error.err = ENOENT;  // "not there" reads the same for every object kind
    }
  }

 private:
  std::string ns_;
  Mode mode_;
  int family_, dstLen_;
  std::string dst_, gateway_, dev_, src_;
  std::optional<int64_t> metric_, table_, scope_, protocol_, type_;
};

class ListJob : public Job {
 public:
  ListJob(std::string ns, int family) : ns_(std::move(ns)), family_(family) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    nl_cache* raw = nullptr;
    if (!lease.Dump("route/route", RTM_GETROUTE, family_, &raw, "list routes", &error)) return;
    NlCache cache(raw);
    for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
      auto* r = reinterpret_cast<rtnl_route*>(o);
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
      routes_.push_back(std::move(info));
    }
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

Napi::Value Change(const Napi::CallbackInfo& info, Mode mode) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), mode));
}
Napi::Value Add(const Napi::CallbackInfo& info) { return Change(info, Mode::Add); }
Napi::Value Replace(const Napi::CallbackInfo& info) { return Change(info, Mode::Replace); }
Napi::Value Delete(const Napi::CallbackInfo& info) { return Change(info, Mode::Delete); }
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
