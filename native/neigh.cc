// Neighbours (ARP and NDP entries): add, delete, list. The ip(8) equivalents are in lib/neighbors.ts.
#include "neigh.h"

#include <linux/neighbour.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "nl_raw.h"
#include "rtnl/dump.h"
#include "rtnl/holders.h"

namespace nk {

NeighInfo ReadNeigh(rtnl_neigh* n) {
  NeighInfo info;
  info.index = rtnl_neigh_get_ifindex(n);
  info.family = rtnl_neigh_get_family(n);
  info.state = rtnl_neigh_get_state(n);
  info.flags = static_cast<int>(rtnl_neigh_get_flags(n));
  info.address = AddrToString(rtnl_neigh_get_dst(n));
  nl_addr* ll = rtnl_neigh_get_lladdr(n);
  if (ll && nl_addr_get_len(ll) == 6) {
    char buf[32];
    info.mac = nl_addr2str(ll, buf, sizeof(buf));
  }
  return info;
}

Napi::Object NeighToJs(Napi::Env env, const NeighInfo& n) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", n.index);
  o.Set("family", n.family);
  o.Set("address", n.address);
  o.Set("mac", n.mac);
  o.Set("state", n.state);
  o.Set("flags", n.flags);
  return o;
}

namespace {

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, bool add) : ns_(std::move(ns)), add_(add) {
    dev_ = String(o, "dev");
    address_ = String(o, "address");
    mac_ = String(o, "mac");
    family_ = static_cast<int>(OptInt(o, "family").value_or(AF_INET));
    state_ = static_cast<int>(OptInt(o, "state").value_or(NUD_PERMANENT));
    replace_ = OptBool(o, "replace").value_or(false);
    proxy_ = OptBool(o, "proxy").value_or(false);
  }
  void Execute() override {
    const char* op = add_ ? "add neighbor" : "delete neighbor";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int index;
    if (!LookupIfIndex(lease, dev_, &index, &error)) return;
    NlPtr<rtnl_neigh> n(rtnl_neigh_alloc());
    rtnl_neigh_set_ifindex(n.get(), index);
    rtnl_neigh_set_family(n.get(), family_);
    NlAddr dst = ParseAddr(address_, family_);
    if (!dst) {
      error.Set(EINVAL, op, "bad address " + address_);
      return;
    }
    rtnl_neigh_set_dst(n.get(), dst.get());
    // A proxy entry (`ip neigh add proxy ADDR dev DEV`) answers ARP/NDP for ADDR; it has no MAC.
    if (proxy_) rtnl_neigh_set_flags(n.get(), NTF_PROXY);
    if (add_ && !proxy_) {
      NlAddr ll = ParseAddr(mac_, AF_LLC);
      if (!ll) {
        error.Set(EINVAL, op, "bad MAC address " + mac_);
        return;
      }
      rtnl_neigh_set_lladdr(n.get(), ll.get());
      rtnl_neigh_set_state(n.get(), state_);
    }
    nl_msg* msg = nullptr;
    int rc = add_ ? rtnl_neigh_build_add_request(n.get(), NLM_F_CREATE | (replace_ ? NLM_F_REPLACE : NLM_F_EXCL), &msg)
                  : rtnl_neigh_build_delete_request(n.get(), 0, &msg);
    if (rc < 0) {
      error.Set(ENOMEM, op, address_);
      return;
    }
    lease.Transact(msg, op, address_ + " dev " + dev_, &error);
  }

 private:
  std::string ns_;
  bool add_;
  std::string dev_, address_, mac_;
  int family_, state_;
  bool replace_, proxy_;
};

class ListJob : public Job {
 public:
  explicit ListJob(std::string ns) : ns_(std::move(ns)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    DumpEach(
        lease, RTM_GETNEIGH, AF_UNSPEC, "list neighbors", &error, [&] { neighs_.clear(); },
        [&](nl_object* o, const nlmsghdr*) { neighs_.push_back(ReadNeigh(reinterpret_cast<rtnl_neigh*>(o))); });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, neighs_.size());
    for (size_t i = 0; i < neighs_.size(); i++) out.Set(i, NeighToJs(env, neighs_[i]));
    return out;
  }

 private:
  std::string ns_;
  std::vector<NeighInfo> neighs_;
};

// Proxy entries are a table of their own: the kernel dumps them only for a request whose ndmsg
// says NTF_PROXY (`ip neigh show proxy`).
class ProxyListJob : public Job {
 public:
  explicit ProxyListJob(std::string ns) : ns_(std::move(ns)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    ndmsg hdr{};
    hdr.ndm_flags = NTF_PROXY;
    RawDump(
        lease, RTM_GETNEIGH, &hdr, sizeof(hdr), "list proxy neighbors", &error, [&] { neighs_.clear(); },
        [&](nl_msg* msg) {
          nl_msg_parse(msg, [](nl_object* o, void* arg) {
            static_cast<std::vector<NeighInfo>*>(arg)->push_back(ReadNeigh(reinterpret_cast<rtnl_neigh*>(o)));
          }, &neighs_);
        });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, neighs_.size());
    for (size_t i = 0; i < neighs_.size(); i++) out.Set(i, NeighToJs(env, neighs_[i]));
    return out;
  }

 private:
  std::string ns_;
  std::vector<NeighInfo> neighs_;
};

Napi::Value ProxyList(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ProxyListJob>(info[0].As<Napi::String>()));
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), true));
}
Napi::Value Delete(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), false));
}
Napi::Value List(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ListJob>(info[0].As<Napi::String>()));
}

}  // namespace

void InitNeigh(Napi::Env env, Napi::Object exports) {
  exports.Set("neighAdd", Napi::Function::New(env, Add));
  exports.Set("neighDelete", Napi::Function::New(env, Delete));
  exports.Set("neighList", Napi::Function::New(env, List));
  exports.Set("neighProxyList", Napi::Function::New(env, ProxyList));
}

}  // namespace nk
