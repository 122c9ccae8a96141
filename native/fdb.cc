// Forwarding database entries of bridges and vxlan devices (`bridge fdb`): add/append/replace,
// delete, list. The bridge(8) equivalents are in lib/fdb.ts.
#include "fdb.h"

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "nl_raw.h"
#include "nl_socket.h"
#include "rtnl/holders.h"

namespace nk {

FdbInfo DecodeFdb(const nlmsghdr* h) {
  FdbInfo f;
  auto* m = static_cast<const ndmsg*>(nlmsg_data(h));
  f.index = m->ndm_ifindex;
  f.state = m->ndm_state;
  f.flags = m->ndm_flags;
  if (nlattr* a = FindAttr(h, sizeof(ndmsg), NDA_LLADDR); a && nla_len(a) == 6) {
    auto* b = static_cast<const unsigned char*>(nla_data(a));
    char buf[18];
    snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    f.mac = buf;
  }
  f.dst = RawAddrToString(FindAttr(h, sizeof(ndmsg), NDA_DST));
  if (nlattr* a = FindAttr(h, sizeof(ndmsg), NDA_VNI); a && nla_len(a) >= 4) f.vni = nla_get_u32(a);
  if (nlattr* a = FindAttr(h, sizeof(ndmsg), NDA_PORT); a && nla_len(a) >= 2) f.port = ntohs(nla_get_u16(a));
  if (nlattr* a = FindAttr(h, sizeof(ndmsg), NDA_VLAN); a && nla_len(a) >= 2) f.vlan = nla_get_u16(a);
  if (nlattr* a = FindAttr(h, sizeof(ndmsg), NDA_MASTER); a && nla_len(a) >= 4) f.master = static_cast<int>(nla_get_u32(a));
  return f;
}

Napi::Object FdbToJs(Napi::Env env, const FdbInfo& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", f.index);
  o.Set("mac", f.mac);
  o.Set("dst", f.dst);
  o.Set("vni", f.vni);
  o.Set("port", f.port);
  o.Set("vlan", f.vlan);
  o.Set("flags", f.flags);
  o.Set("state", f.state);
  o.Set("master", f.master);
  return o;
}

namespace {

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, bool add) : ns_(std::move(ns)), add_(add) {
    dev_ = String(o, "dev");
    mac_ = String(o, "mac");
    dst_ = String(o, "dst");
    vni_ = OptInt(o, "vni");
    port_ = OptInt(o, "port");
    vlan_ = OptInt(o, "vlan");
    master_ = OptBool(o, "master").value_or(false);
    self_ = OptBool(o, "self").value_or(false);
    state_ = static_cast<int>(OptInt(o, "state").value_or(NUD_PERMANENT));
    append_ = OptBool(o, "append").value_or(false);
    replace_ = OptBool(o, "replace").value_or(false);
  }

  void Execute() override {
    const char* op = add_ ? (append_ ? "append fdb entry" : "add fdb entry") : "delete fdb entry";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int index;
    if (!LookupIfIndex(lease, dev_, &index, &error)) return;
    ndmsg hdr{};
    hdr.ndm_family = AF_BRIDGE;
    hdr.ndm_ifindex = index;
    hdr.ndm_state = static_cast<uint16_t>(add_ ? state_ : 0);
    hdr.ndm_flags = static_cast<uint8_t>((master_ ? NTF_MASTER : 0) | (self_ ? NTF_SELF : 0));
    // As bridge(8): add is exclusive, append adds another remote to the same MAC (flood lists).
    int flags = add_ ? NLM_F_CREATE | (append_ ? NLM_F_APPEND : replace_ ? NLM_F_REPLACE : NLM_F_EXCL) : 0;
    NlMsg msg(nlmsg_alloc_simple(add_ ? RTM_NEWNEIGH : RTM_DELNEIGH, flags));
    unsigned char mac[6];
    if (sscanf(mac_.c_str(), "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) {
      error.Set(EINVAL, op, "bad MAC address " + mac_);
      return;
    }
    bool ok = msg && nlmsg_append(msg.get(), &hdr, sizeof(hdr), NLMSG_ALIGNTO) >= 0 && nla_put(msg.get(), NDA_LLADDR, 6, mac) >= 0;
    if (ok && !dst_.empty()) {
      unsigned char buf[16];
      int family = dst_.find(':') != std::string::npos ? AF_INET6 : AF_INET;
      if (inet_pton(family, dst_.c_str(), buf) != 1) {
        error.Set(EINVAL, op, "bad dst " + dst_);
        return;
      }
      ok = nla_put(msg.get(), NDA_DST, family == AF_INET6 ? 16 : 4, buf) >= 0;
    }
    if (ok && vni_) ok = nla_put_u32(msg.get(), NDA_VNI, static_cast<uint32_t>(*vni_)) >= 0;
    if (ok && port_) ok = nla_put_u16(msg.get(), NDA_PORT, htons(static_cast<uint16_t>(*port_))) >= 0;
    if (ok && vlan_) ok = nla_put_u16(msg.get(), NDA_VLAN, static_cast<uint16_t>(*vlan_)) >= 0;
    if (!ok) {
      error.Set(ENOMEM, op, mac_);
      return;
    }
    std::string what = mac_ + " dev " + dev_;
    if (!dst_.empty()) what += " dst " + dst_;
    lease.Transact(msg.release(), op, what, &error);
  }

 private:
  std::string ns_;
  bool add_;
  std::string dev_, mac_, dst_;
  std::optional<int64_t> vni_, port_, vlan_;
  bool master_, self_, append_, replace_;
  int state_;
};

class ListJob : public Job {
 public:
  explicit ListJob(std::string ns) : ns_(std::move(ns)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    ndmsg hdr{};
    hdr.ndm_family = AF_BRIDGE;
    RawDump(
        lease, RTM_GETNEIGH, &hdr, sizeof(hdr), "list fdb", &error, [&] { out_.clear(); },
        [&](nl_msg* msg) {
          const nlmsghdr* h = nlmsg_hdr(msg);
          if (h->nlmsg_type != RTM_NEWNEIGH || h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) return;
          if (static_cast<const ndmsg*>(nlmsg_data(h))->ndm_family != AF_BRIDGE) return;
          out_.push_back(DecodeFdb(h));
        });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) out.Set(i, FdbToJs(env, out_[i]));
    return out;
  }

 private:
  std::string ns_;
  std::vector<FdbInfo> out_;
};

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

void InitFdb(Napi::Env env, Napi::Object exports) {
  exports.Set("fdbAdd", Napi::Function::New(env, Add));
  exports.Set("fdbDelete", Napi::Function::New(env, Delete));
  exports.Set("fdbList", Napi::Function::New(env, List));
}

}  // namespace nk
