// Addresses (IPv4 and IPv6): add, delete, list. The ip(8) equivalents are in lib/addresses.ts.
#include <linux/if_addr.h>
#include <netlink/route/addr.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "nl_object.h"

namespace nk {

namespace {

struct AddrInfo {
  int index = 0, family = 0, prefixlen = 0, scope = 0;
  uint32_t flags = 0;
  std::string address, label, peer, broadcast;
};

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
    NlPtr<rtnl_addr> addr(rtnl_addr_alloc());
    NlAddr local = ParseAddr(address_, family_);
    if (!local) {
      error.Set(EINVAL, op, "bad address " + address_);
      return;
    }
    nl_addr_set_prefixlen(local.get(), prefixlen_);
    rtnl_addr_set_ifindex(addr.get(), index);
    rtnl_addr_set_local(addr.get(), local.get());
    rtnl_addr_set_prefixlen(addr.get(), prefixlen_);
    if (!broadcast_.empty()) {
      NlAddr b = ParseAddr(broadcast_, family_);
      if (b) rtnl_addr_set_broadcast(addr.get(), b.get());
    }
    if (!label_.empty()) rtnl_addr_set_label(addr.get(), label_.c_str());
    if (scope_) rtnl_addr_set_scope(addr.get(), static_cast<int>(*scope_));
    if (noDad_) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
    nl_msg* msg = nullptr;
    int rc = add_ ? rtnl_addr_build_add_request(addr.get(), NLM_F_CREATE | (replace_ ? NLM_F_REPLACE : NLM_F_EXCL), &msg)
                  : rtnl_addr_build_delete_request(addr.get(), 0, &msg);
    if (rc < 0) {
      error.Set(ENOMEM, op, address_);
      return;
    }
    std::string what = address_ + "/" + std::to_string(prefixlen_) + " dev " + dev_;
    if (!lease.Transact(msg, op, what, &error) && !add_ && error.err == EADDRNOTAVAIL) {
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
    nl_cache* raw = nullptr;
    if (!lease.Dump("route/addr", RTM_GETADDR, AF_UNSPEC, &raw, "list addresses", &error)) return;
    NlCache cache(raw);
    for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
      auto* a = reinterpret_cast<rtnl_addr*>(o);
      if (family_ != AF_UNSPEC && rtnl_addr_get_family(a) != family_) continue;
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
      addrs_.push_back(std::move(info));
    }
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
