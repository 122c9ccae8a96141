// Links: veth (peer created directly in its namespace), bridge, dummy, macvlan, vxlan; set, list,
// delete. The ip(8) equivalents are in lib/links.ts.
#include "link.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>

#include <arpa/inet.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "rtnl/dump.h"
#include "rtnl/holders.h"
#include "rtnl/message.h"

namespace nk {

LinkInfo ReadLink(rtnl_link* link) {
  LinkInfo l;
  l.index = rtnl_link_get_ifindex(link);
  if (const char* n = rtnl_link_get_name(link)) l.name = n;
  if (const char* t = rtnl_link_get_type(link)) l.kind = t;
  if (nl_addr* a = rtnl_link_get_addr(link)) {
    char buf[64];
    if (nl_addr_get_len(a) == 6) l.mac = nl_addr2str(a, buf, sizeof(buf));
  }
  char buf[32];
  l.operstate = rtnl_link_operstate2str(rtnl_link_get_operstate(link), buf, sizeof(buf));
  l.mtu = rtnl_link_get_mtu(link);
  l.flags = rtnl_link_get_flags(link);
  l.master = static_cast<uint32_t>(rtnl_link_get_master(link));
  l.group = rtnl_link_get_group(link);
  l.peerIndex = rtnl_link_get_link(link);
  int32_t id;
  if (rtnl_link_get_link_netnsid(link, &id) == 0) l.linkNetnsId = id;
  l.rxBytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES);
  l.rxPackets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
  l.rxErrors = rtnl_link_get_stat(link, RTNL_LINK_RX_ERRORS);
  l.rxDropped = rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED);
  l.txBytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES);
  l.txPackets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS);
  l.txErrors = rtnl_link_get_stat(link, RTNL_LINK_TX_ERRORS);
  l.txDropped = rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED);
  l.multicast = rtnl_link_get_stat(link, RTNL_LINK_MULTICAST);
  l.collisions = rtnl_link_get_stat(link, RTNL_LINK_COLLISIONS);
  return l;
}

Napi::Object LinkToJs(Napi::Env env, const LinkInfo& l) { return LinkToJsStats(env, l, false); }

Napi::Object LinkToJsStats(Napi::Env env, const LinkInfo& l, bool stats) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", l.index);
  o.Set("name", l.name);
  o.Set("kind", l.kind);
  o.Set("mac", l.mac);
  o.Set("mtu", l.mtu);
  o.Set("flags", l.flags);
  o.Set("operstate", l.operstate);
  o.Set("master", l.master);
  o.Set("group", l.group);
  o.Set("peerIndex", l.peerIndex);
  o.Set("linkNetnsId", l.linkNetnsId);
  if (stats) {
    // Numbers, not BigInts: 2^53 bytes is 9 PB, beyond what a link carries while a process lives.
    Napi::Object s = Napi::Object::New(env);
    s.Set("rxBytes", static_cast<double>(l.rxBytes));
    s.Set("rxPackets", static_cast<double>(l.rxPackets));
    s.Set("rxErrors", static_cast<double>(l.rxErrors));
    s.Set("rxDropped", static_cast<double>(l.rxDropped));
    s.Set("txBytes", static_cast<double>(l.txBytes));
    s.Set("txPackets", static_cast<double>(l.txPackets));
    s.Set("txErrors", static_cast<double>(l.txErrors));
    s.Set("txDropped", static_cast<double>(l.txDropped));
    s.Set("multicast", static_cast<double>(l.multicast));
    s.Set("collisions", static_cast<double>(l.collisions));
    o.Set("stats", s);
  }
  return o;
}

NlPtr<rtnl_link> GetLinkByName(SocketLease& lease, const std::string& name, OpError* err) {
  nl_msg* request = nullptr;
  if (rtnl_link_build_get_request(0, name.c_str(), &request) < 0) {
    err->Set(ENOMEM, "get link", name);
    return nullptr;
  }
  // Decoded like a dump's messages (rtnl/dump.h): a link libnl cannot read in full is still found.
  NlPtr<rtnl_link> found;
  auto onReply = [](nl_msg* msg, void* arg) {
    auto* out = static_cast<NlPtr<rtnl_link>*>(arg);
    ParseObjects(msg, [out](nl_object* o, const nlmsghdr*) {
      nl_object_get(o);
      out->reset(reinterpret_cast<rtnl_link*>(o));
    });
    return static_cast<int>(NL_OK);
  };
  OpError local;
  if (!lease.Request(request, "get link", name, &local, onReply, &found) || !found) {
    if (local.err == ENODEV || !local.failed()) {
      err->Set(ENOENT, "get link", "no such link " + name);
    } else {
      *err = local;
    }
    return nullptr;
  }
  return found;
}

bool LookupIfIndex(SocketLease& lease, const std::string& name, int* index, OpError* err) {
  // SIOCGIFINDEX on the namespace's own netlink socket answers in that socket's namespace, from
  // the kernel's name table under RCU (altnames included): what if_nametoindex(3) does, without a
  // netlink round trip and a whole link message to decode. A veth add with a master, an address
  // or a route by device name each save one. Anything but "no such device" (a kernel or a socket
  // refusing the ioctl) falls back to asking over netlink.
  if (!name.empty() && name.size() < IFNAMSIZ) {
    ifreq ifr{};
    memcpy(ifr.ifr_name, name.data(), name.size());
    if (ioctl(nl_socket_get_fd(lease.sk()), SIOCGIFINDEX, &ifr) == 0) {
      *index = ifr.ifr_ifindex;
      return true;
    }
    if (errno == ENODEV) {
      err->Set(ENOENT, "get link", "no such link " + name);
      return false;
    }
  }
  NlPtr<rtnl_link> link = GetLinkByName(lease, name, err);
  if (!link) return false;
  *index = rtnl_link_get_ifindex(link.get());
  return true;
}

namespace {

// Fields common to a new link and its veth peer.
struct LinkSpec {
  std::string name, mac;
  std::optional<int64_t> mtu, index, group, txqlen;
  bool up = false;
};

LinkSpec ReadSpec(const Napi::Object& o) {
  LinkSpec s;
  s.name = String(o, "name");
  s.mac = String(o, "mac");
  s.mtu = OptInt(o, "mtu");
  s.index = OptInt(o, "index");
  s.group = OptInt(o, "group");
  s.txqlen = OptInt(o, "txqlen");
  s.up = OptBool(o, "up").value_or(false);
  return s;
}

bool ApplySpec(rtnl_link* link, const LinkSpec& s, bool set_up, OpError* err) {
  if (!s.name.empty()) rtnl_link_set_name(link, s.name.c_str());
  if (s.mtu) rtnl_link_set_mtu(link, static_cast<unsigned>(*s.mtu));
  if (s.index) rtnl_link_set_ifindex(link, static_cast<int>(*s.index));
  if (s.group) rtnl_link_set_group(link, static_cast<uint32_t>(*s.group));
  if (s.txqlen) rtnl_link_set_txqlen(link, static_cast<unsigned>(*s.txqlen));
  if (!s.mac.empty()) {
    NlAddr mac = ParseAddr(s.mac, AF_LLC);
    if (!mac) {
      err->Set(EINVAL, "add link", "bad MAC address " + s.mac);
      return false;
    }
    rtnl_link_set_addr(link, mac.get());
  }
  if (set_up && s.up) rtnl_link_set_flags(link, IFF_UP);
  return true;
}

// Sets IFF_UP on an existing link through the socket of the namespace it lives in.
bool BringUp(SocketLease& lease, const std::string& name, OpError* err) {
  NlMsg msg = LinkUpRequest(0, name, err);
  return msg && lease.Transact(std::move(msg), "set link up", name, err);
}

bool DeleteByName(SocketLease& lease, const std::string& name, OpError* err) {
  NlPtr<rtnl_link> link(rtnl_link_alloc());
  rtnl_link_set_name(link.get(), name.c_str());
  nl_msg* msg = nullptr;
  if (rtnl_link_build_delete_request(link.get(), &msg) < 0) {
    err->Set(ENOMEM, "delete link", name);
    return false;
  }
  if (!lease.Transact(msg, "delete link", name, err)) {
    if (err->err == ENODEV) {
      err->err = ENOENT;
      err->detail = "no such link " + name;
    }
    return false;
  }
  return true;
}

class AddJob : public Job {
 public:
  // Creating a device is the kernel's slow path (registration, sysfs, notifier chains, work for
  // kernel threads); a caller polling for it would only take a CPU from them.
  int CallerWaitMicros() const override { return 0; }

  AddJob(std::string ns, const Napi::Object& o) : ns_(std::move(ns)) {
    kind_ = String(o, "kind");
    spec_ = ReadSpec(o);
    master_ = String(o, "master");
    if (auto p = OptObject(o, "peer")) {
      peer_ = ReadSpec(*p);
      peerNs_ = String(*p, "netns");
    }
    parent_ = String(o, "parent");
    macvlanMode_ = String(o, "mode");
    if (auto v = OptObject(o, "vxlan")) {
      vni_ = OptInt(*v, "id").value_or(0);
      remote_ = String(*v, "remote");
      group_ = String(*v, "group");
      local_ = String(*v, "local");
      port_ = OptInt(*v, "port");
      learning_ = OptBool(*v, "learning");
      ttl_ = OptInt(*v, "ttl");
      l2miss_ = OptBool(*v, "l2miss");
      l3miss_ = OptBool(*v, "l3miss");
      Napi::Value range = v->Get("srcPortRange");
      if (range.IsArray()) {
        auto a = range.As<Napi::Array>();
        srcPortLow_ = a.Get(0u).As<Napi::Number>().Int64Value();
        srcPortHigh_ = a.Get(1u).As<Napi::Number>().Int64Value();
      }
    }
  }

  void Execute() override {
    // Optional so that it can be given back before the peer's namespace is leased (see below).
    std::optional<SocketLease> held(std::in_place, ns_, &error);
    SocketLease& lease = *held;
    if (!lease.ok()) return;
    NlPtr<rtnl_link> link(Build(lease));
    if (!link) return;
    // Master and IFF_UP travel in the creating message: one round trip, no intermediate state.
    if (!master_.empty()) {
      int m;
      if (!LookupIfIndex(lease, master_, &m, &error)) return;
      rtnl_link_set_master(link.get(), m);
    }
    if (!ApplySpec(link.get(), spec_, true, &error)) return;

    Fd peerNsFd;
    if (kind_ == "veth") {
      rtnl_link* peer = rtnl_link_veth_get_peer(link.get());
      NlPtr<rtnl_link> peerHold(peer);
      // Not IFF_UP here: on recent kernels an up peer in the creating message fails (ENOTCONN).
      if (!ApplySpec(peer, peer_, false, &error)) return;
      if (!peerNs_.empty()) {
        peerNsFd = OpenNetns(peerNs_, &error);
        if (!peerNsFd.valid()) return;
        rtnl_link_set_ns_fd(peer, peerNsFd.get());
      }
    }
    nl_msg* msg = nullptr;
    if (rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &msg) < 0) {
      error.Set(ENOMEM, "add link", spec_.name);
      return;
    }
    if (!lease.Transact(msg, "add link", spec_.name, &error)) return;

    if (kind_ == "veth" && peer_.up) {
      OpError upErr;
      bool ok;
      // The peer's namespace may be this one (a veth with both ends here): its socket is the
      // one `lease` already holds locked, so use it rather than leasing it again (deadlock).
      if (peerNs_.empty() || peerNs_ == ns_) {
        ok = BringUp(lease, peer_.name, &upErr);
      } else {
        // Never two leases at once: holding ours while waiting for the peer's deadlocks against
        // a veth added the other way round at the same moment. Ours is taken again to undo.
        held.reset();
        {
          SocketLease peerLease(peerNs_, &upErr);
          ok = peerLease.ok() && BringUp(peerLease, peer_.name, &upErr);
        }
        if (!ok) held.emplace(ns_, &upErr);
      }
      if (!ok) {
        // Half a veth is worse than none: deleting our end removes the peer too.
        OpError ignored;
        if (held && held->ok()) DeleteByName(*held, spec_.name, &ignored);
        error = upErr;
      }
    }
  }

 private:
  rtnl_link* Build(SocketLease& lease) {
    if (kind_ == "veth") return rtnl_link_veth_alloc();
    if (kind_ == "macvlan") {
      rtnl_link* l = rtnl_link_macvlan_alloc();
      if (!macvlanMode_.empty()) rtnl_link_macvlan_set_mode(l, rtnl_link_macvlan_str2mode(macvlanMode_.c_str()));
      if (!SetParent(lease, l)) {
        rtnl_link_put(l);
        return nullptr;
      }
      return l;
    }
    if (kind_ == "vxlan") {
      rtnl_link* l = rtnl_link_vxlan_alloc();
      rtnl_link_vxlan_set_id(l, static_cast<uint32_t>(vni_));
      bool ok = SetAddr(l, remote_.empty() ? group_ : remote_, rtnl_link_vxlan_set_group) &&
                SetAddr(l, local_, rtnl_link_vxlan_set_local);
      if (port_) rtnl_link_vxlan_set_port(l, static_cast<uint32_t>(*port_));
      if (learning_) rtnl_link_vxlan_set_learning(l, *learning_ ? 1 : 0);
      if (ttl_) rtnl_link_vxlan_set_ttl(l, static_cast<uint8_t>(*ttl_));
      // Overlay options (flannel-style VTEPs): miss notifications and the UDP source port range.
      if (l2miss_) rtnl_link_vxlan_set_l2miss(l, *l2miss_ ? 1 : 0);
      if (l3miss_) rtnl_link_vxlan_set_l3miss(l, *l3miss_ ? 1 : 0);
      if (srcPortLow_) {
        ifla_vxlan_port_range range{htons(static_cast<uint16_t>(*srcPortLow_)), htons(static_cast<uint16_t>(*srcPortHigh_))};
        rtnl_link_vxlan_set_port_range(l, &range);
      }
      if (!ok || !SetVxlanParent(lease, l)) {
        rtnl_link_put(l);
        return nullptr;
      }
      return l;
    }
    // bridge, dummy and any other kind without options of its own.
    rtnl_link* l = rtnl_link_alloc();
    if (rtnl_link_set_type(l, kind_.c_str()) < 0) {
      // libnl knows no such kind; the kernel may still, so send the name as IFLA_INFO_KIND.
    }
    return l;
  }

  bool SetAddr(rtnl_link* l, const std::string& text, int (*set)(rtnl_link*, nl_addr*)) {
    if (text.empty()) return true;
    NlAddr a = ParseAddr(text, AF_UNSPEC);
    if (!a || set(l, a.get()) < 0) {
      error.Set(EINVAL, "add link", "bad vxlan address " + text);
      return false;
    }
    return true;
  }

  bool SetParent(SocketLease& lease, rtnl_link* l) {
    if (parent_.empty()) return true;
    int idx;
    if (!LookupIfIndex(lease, parent_, &idx, &error)) return false;
    rtnl_link_set_link(l, idx);
    return true;
  }

  bool SetVxlanParent(SocketLease& lease, rtnl_link* l) {
    if (parent_.empty()) return true;
    int idx;
    if (!LookupIfIndex(lease, parent_, &idx, &error)) return false;
    rtnl_link_vxlan_set_link(l, static_cast<uint32_t>(idx));
    return true;
  }

  std::string ns_, kind_, master_, peerNs_, parent_, macvlanMode_;
  LinkSpec spec_, peer_;
  int64_t vni_ = 0;
  std::string remote_, group_, local_;
  std::optional<int64_t> port_, ttl_, srcPortLow_, srcPortHigh_;
  std::optional<bool> learning_, l2miss_, l3miss_;
};

class SetJob : public Job {
 public:
  SetJob(std::string ns, std::string name, const Napi::Object& o) : ns_(std::move(ns)), name_(std::move(name)) {
    up_ = OptBool(o, "up");
    mtu_ = OptInt(o, "mtu");
    mac_ = String(o, "mac");
    rename_ = String(o, "name");
    master_ = OptString(o, "master");  // "" means nomaster
    netns_ = String(o, "netns");
    group_ = OptInt(o, "group");
    txqlen_ = OptInt(o, "txqlen");
  }

  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int index;
    if (!LookupIfIndex(lease, name_, &index, &error)) return;
    NlPtr<rtnl_link> change(rtnl_link_alloc());
    rtnl_link_set_ifindex(change.get(), index);
    if (!rename_.empty()) rtnl_link_set_name(change.get(), rename_.c_str());
    if (mtu_) rtnl_link_set_mtu(change.get(), static_cast<unsigned>(*mtu_));
    if (group_) rtnl_link_set_group(change.get(), static_cast<uint32_t>(*group_));
    if (txqlen_) rtnl_link_set_txqlen(change.get(), static_cast<unsigned>(*txqlen_));
    if (up_) {
      if (*up_) rtnl_link_set_flags(change.get(), IFF_UP);
      else rtnl_link_unset_flags(change.get(), IFF_UP);
    }
    if (!mac_.empty()) {
      NlAddr mac = ParseAddr(mac_, AF_LLC);
      if (!mac) {
        error.Set(EINVAL, "set link", "bad MAC address " + mac_);
        return;
      }
      rtnl_link_set_addr(change.get(), mac.get());
    }
    if (master_) {
      int m = 0;
      if (!master_->empty() && !LookupIfIndex(lease, *master_, &m, &error)) return;
      rtnl_link_set_master(change.get(), m);
    }
    Fd nsFd;
    if (!netns_.empty()) {
      nsFd = OpenNetns(netns_, &error);
      if (!nsFd.valid()) return;
      rtnl_link_set_ns_fd(change.get(), nsFd.get());
    }
    nl_msg* msg = nullptr;
    if (rtnl_link_build_add_request(change.get(), 0, &msg) < 0) {
      error.Set(ENOMEM, "set link", name_);
      return;
    }
    lease.Transact(msg, "set link", name_, &error);
  }

 private:
  std::string ns_, name_, mac_, rename_, netns_;
  std::optional<bool> up_;
  std::optional<int64_t> mtu_, group_, txqlen_;
  std::optional<std::string> master_;
};

class DeleteJob : public Job {
 public:
  DeleteJob(std::string ns, std::string name) : ns_(std::move(ns)), name_(std::move(name)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (lease.ok()) DeleteByName(lease, name_, &error);
  }

 private:
  std::string ns_, name_;
};

class ListJob : public Job {
 public:
  ListJob(std::string ns, std::string name, bool stats) : ns_(std::move(ns)), name_(std::move(name)), stats_(stats) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    if (!name_.empty()) {
      NlPtr<rtnl_link> link = GetLinkByName(lease, name_, &error);
      if (link) links_.push_back(ReadLink(link.get()));
      return;
    }
    DumpEach(
        lease, RTM_GETLINK, AF_UNSPEC, "list links", &error, [&] { links_.clear(); },
        [&](nl_object* o, const nlmsghdr*) { links_.push_back(ReadLink(reinterpret_cast<rtnl_link*>(o))); });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, links_.size());
    for (size_t i = 0; i < links_.size(); i++) out.Set(i, LinkToJsStats(env, links_[i], stats_));
    return out;
  }

 private:
  std::string ns_, name_;
  bool stats_;
  std::vector<LinkInfo> links_;
};

Napi::Value Add(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<AddJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>()));
}
Napi::Value Set(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<SetJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                                     info[2].As<Napi::Object>()));
}
Napi::Value Delete(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<DeleteJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>()));
}
Napi::Value List(const Napi::CallbackInfo& info) {
  std::string name = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  bool stats = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return Submit(info.Env(), std::make_unique<ListJob>(info[0].As<Napi::String>(), name, stats));
}

}  // namespace

void InitLink(Napi::Env env, Napi::Object exports) {
  exports.Set("linkAdd", Napi::Function::New(env, Add));
  exports.Set("linkSet", Napi::Function::New(env, Set));
  exports.Set("linkDelete", Napi::Function::New(env, Delete));
  exports.Set("linkList", Napi::Function::New(env, List));
}

}  // namespace nk
