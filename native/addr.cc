// Addresses (IPv4 and IPv6): add, delete, list. The ip(8) equivalents are in lib/addresses.ts.
#include "addr.h"

#include <linux/if_addr.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "rtnl/dump.h"
#include "rtnl/holders.h"
#include "rtnl/message.h"

namespace nk {

AddrInfo ReadAddr(rtnl_addr* a) {
  AddrInfo info;
  info.index = rtnl_addr_get_ifindex(a);
  info.family = rtnl_addr_get_family(a);
  info.address = AddrToString(rtnl_addr_get_local(a));
  info.prefixlen = rtnl_addr_get_prefixlen(a);
  info.scope = rtnl_addr_get_scope(a);
  info.flags = rtnl_addr_get_flags(a);
  if (const char* l = rtnl_addr_get_label(a)) info.label = l;
  nl_addr* peer = rtnl_addr_get_peer(a);
  if (peer && nl_addr_cmp(peer, rtnl_addr_get_local(a)) != 0) info.peer = AddrToString(peer);
  info.broadcast = AddrToString(rtnl_addr_get_broadcast(a));
  return info;
}

Napi::Object AddrToJs(Napi::Env env, const AddrInfo& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", a.index);
  o.Set("family", a.family);
  o.Set("address", a.address);
  o.Set("prefixlen", a.prefixlen);
  o.Set("scope", a.scope);
  o.Set("flags", a.flags);
  o.Set("label", a.label);
  if (!a.peer.empty()) o.Set("peer", a.peer);
  if (!a.broadcast.empty()) o.Set("broadcast", a.broadcast);
  return o;
}

namespace {

// add/delete share one shape: { dev, address, prefixlen, family, broadcast?, label?, scope?, noDad? }
class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, bool add) : ns_(std::move(ns)), add_(add) {
    dev_ = String(o, "dev");
    address_ = String(o, "address");
    prefixlen_ = static_cast<int>(OptInt(o, "prefixlen").value_or(0));
    family_ = static_cast<int>(OptInt(o, "family").value_or(AF_INET));
    broadcast_ = String(o, "broadcast");
    label_ = String(o, "label");
    scope_ = OptInt(o, "scope");
    noDad_ = OptBool(o, "noDad").value_or(false);
    replace_ = OptBool(o, "replace").value_or(false);
  }

  void Execute() override {
    const char* op = add_ ? "add address" : "delete address";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int index;
    if (!LookupIfIndex(lease, dev_, &index, &error)) return;
    AddrSpec spec;
    spec.index = index;
    spec.family = family_;
    spec.address = address_;
    spec.prefixlen = prefixlen_;
    spec.broadcast = broadcast_;
    spec.label = label_;
    spec.scope = scope_;
    spec.noDad = noDad_;
    NlMsg msg = AddrRequest(spec, add_, NLM_F_CREATE | (replace_ ? NLM_F_REPLACE : NLM_F_EXCL), op, &error);
    if (!msg) return;
    std::string what = address_ + "/" + std::to_string(prefixlen_) + " dev " + dev_;
    if (!lease.Transact(std::move(msg), op, what, &error) && !add_ && error.err == EADDRNOTAVAIL) {
      error.err = ENOENT;  // "not there" reads the same for every object kind
    }
  }

 private:
  std::string ns_;
  bool add_;
  std::string dev_, address_, broadcast_, label_;
  int prefixlen_, family_;
  std::optional<int64_t> scope_;
  bool noDad_, replace_;
};

class ListJob : public Job {
 public:
  ListJob(std::string ns, int family) : ns_(std::move(ns)), family_(family) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    DumpEach(
        lease, RTM_GETADDR, AF_UNSPEC, "list addresses", &error, [&] { addrs_.clear(); },
        [&](nl_object* o, const nlmsghdr*) {
          auto* a = reinterpret_cast<rtnl_addr*>(o);
          if (family_ == AF_UNSPEC || rtnl_addr_get_family(a) == family_) addrs_.push_back(ReadAddr(a));
        });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, addrs_.size());
    for (size_t i = 0; i < addrs_.size(); i++) out.Set(i, AddrToJs(env, addrs_[i]));
    return out;
  }

 private:
  std::string ns_;
  int family_;
  std::vector<AddrInfo> addrs_;
};

Napi::Value Add(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), true));
}
Napi::Value Delete(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), false));
}
Napi::Value List(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ListJob>(info[0].As<Napi::String>(), info[1].As<Napi::Number>().Int32Value()));
}

}  // namespace

void InitAddr(Napi::Env env, Napi::Object exports) {
  exports.Set("addrAdd", Napi::Function::New(env, Add));
  exports.Set("addrDelete", Napi::Function::New(env, Delete));
  exports.Set("addrList", Napi::Function::New(env, List));
}

}  // namespace nk
