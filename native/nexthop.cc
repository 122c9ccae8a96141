// Nexthop objects and groups (`ip nexthop`, RTM_*NEXTHOP): add/replace, delete, list. libnl 3.7
// has no nexthop objects, so the messages are built and decoded here attribute by attribute.
// The ip(8) equivalents are in lib/nexthops.ts.
#include <arpa/inet.h>
#include <linux/nexthop.h>
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
#include "nl_socket.h"
#include "rtnl/holders.h"

namespace nk {

namespace {

struct GroupMember {
  uint32_t id = 0;
  int weight = 1;  // 1-256, as ip(8) shows it (the kernel carries weight - 1)
};

struct NexthopInfo {
  uint32_t id = 0;
  int family = 0, index = 0, protocol = 0, groupType = 0;
  std::string gateway, dev;
  bool blackhole = false, fdb = false;
  std::vector<GroupMember> group;
};

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, bool replace) : ns_(std::move(ns)), replace_(replace) {
    nh_.id = static_cast<uint32_t>(OptInt(o, "id").value_or(0));
    nh_.family = static_cast<int>(OptInt(o, "family").value_or(AF_UNSPEC));
    nh_.gateway = String(o, "gateway");
    nh_.dev = String(o, "dev");
    nh_.blackhole = OptBool(o, "blackhole").value_or(false);
    nh_.fdb = OptBool(o, "fdb").value_or(false);
    nh_.groupType = static_cast<int>(OptInt(o, "groupType").value_or(NEXTHOP_GRP_TYPE_MPATH));
    protocol_ = OptInt(o, "protocol");
    Napi::Value g = o.Get("group");
    if (g.IsArray()) {
      auto a = g.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Object m = a.Get(i).As<Napi::Object>();
        nh_.group.push_back({static_cast<uint32_t>(OptInt(m, "id").value_or(0)), static_cast<int>(OptInt(m, "weight").value_or(1))});
      }
    }
  }

  void Execute() override {
    const char* op = replace_ ? "replace nexthop" : "add nexthop";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int oif = 0;
    if (!nh_.dev.empty() && !LookupIfIndex(lease, nh_.dev, &oif, &error)) return;
    nhmsg hdr{};
    hdr.nh_family = static_cast<uint8_t>(nh_.family);
    hdr.nh_protocol = static_cast<uint8_t>(protocol_.value_or(RTPROT_BOOT));
    NlMsg msg(nlmsg_alloc_simple(RTM_NEWNEXTHOP, NLM_F_CREATE | (replace_ ? NLM_F_REPLACE : NLM_F_EXCL)));
    if (!msg || nlmsg_append(msg.get(), &hdr, sizeof(hdr), NLMSG_ALIGNTO) < 0 || nla_put_u32(msg.get(), NHA_ID, nh_.id) < 0) {
      error.Set(ENOMEM, op, "");
      return;
    }
    bool ok = true;
    if (!nh_.group.empty()) {
      std::vector<nexthop_grp> members(nh_.group.size());
      for (size_t i = 0; i < nh_.group.size(); i++) {
        members[i] = {};
        members[i].id = nh_.group[i].id;
        members[i].weight = static_cast<uint8_t>(nh_.group[i].weight - 1);
      }
      ok = nla_put(msg.get(), NHA_GROUP, static_cast<int>(members.size() * sizeof(nexthop_grp)), members.data()) >= 0 &&
           nla_put_u16(msg.get(), NHA_GROUP_TYPE, static_cast<uint16_t>(nh_.groupType)) >= 0;
    }
    if (ok && nh_.blackhole) ok = nla_put_flag(msg.get(), NHA_BLACKHOLE) >= 0;
    if (ok && nh_.fdb) ok = nla_put_flag(msg.get(), NHA_FDB) >= 0;
    if (ok && oif) ok = nla_put_u32(msg.get(), NHA_OIF, static_cast<uint32_t>(oif)) >= 0;
    if (ok && !nh_.gateway.empty()) {
      unsigned char buf[16];
      if (inet_pton(nh_.family, nh_.gateway.c_str(), buf) != 1) {
        error.Set(EINVAL, op, "bad gateway " + nh_.gateway);
        return;
      }
      ok = nla_put(msg.get(), NHA_GATEWAY, nh_.family == AF_INET6 ? 16 : 4, buf) >= 0;
    }
    if (!ok) {
      error.Set(ENOMEM, op, "");
      return;
    }
    lease.Transact(msg.release(), op, "id " + std::to_string(nh_.id), &error);
  }

 private:
  std::string ns_;
  bool replace_;
  NexthopInfo nh_;
  std::optional<int64_t> protocol_;
};

class DeleteJob : public Job {
 public:
  DeleteJob(std::string ns, uint32_t id) : ns_(std::move(ns)), id_(id) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    nhmsg hdr{};
    NlMsg msg(nlmsg_alloc_simple(RTM_DELNEXTHOP, 0));
    if (!msg || nlmsg_append(msg.get(), &hdr, sizeof(hdr), NLMSG_ALIGNTO) < 0 || nla_put_u32(msg.get(), NHA_ID, id_) < 0) {
      error.Set(ENOMEM, "delete nexthop", "");
      return;
    }
    lease.Transact(msg.release(), "delete nexthop", "id " + std::to_string(id_), &error);
  }

 private:
  std::string ns_;
  uint32_t id_;
};

NexthopInfo Decode(const nlmsghdr* h) {
  NexthopInfo nh;
  auto* m = static_cast<const nhmsg*>(nlmsg_data(h));
  nh.family = m->nh_family;
  nh.protocol = m->nh_protocol;
  if (nlattr* a = FindAttr(h, sizeof(nhmsg), NHA_ID)) nh.id = nla_get_u32(a);
  if (nlattr* a = FindAttr(h, sizeof(nhmsg), NHA_OIF)) nh.index = static_cast<int>(nla_get_u32(a));
  nh.gateway = RawAddrToString(FindAttr(h, sizeof(nhmsg), NHA_GATEWAY));
  nh.blackhole = FindAttr(h, sizeof(nhmsg), NHA_BLACKHOLE) != nullptr;
  nh.fdb = FindAttr(h, sizeof(nhmsg), NHA_FDB) != nullptr;
  if (nlattr* a = FindAttr(h, sizeof(nhmsg), NHA_GROUP_TYPE)) nh.groupType = nla_get_u16(a);
  if (nlattr* a = FindAttr(h, sizeof(nhmsg), NHA_GROUP)) {
    auto* g = static_cast<const nexthop_grp*>(nla_data(a));
    size_t n = static_cast<size_t>(nla_len(a)) / sizeof(nexthop_grp);
    for (size_t i = 0; i < n; i++) nh.group.push_back({g[i].id, g[i].weight + 1});
  }
  return nh;
}

class ListJob : public Job {
 public:
  explicit ListJob(std::string ns) : ns_(std::move(ns)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    nhmsg hdr{};
    RawDump(
        lease, RTM_GETNEXTHOP, &hdr, sizeof(hdr), "list nexthops", &error, [&] { out_.clear(); },
        [&](nl_msg* msg) {
          const nlmsghdr* h = nlmsg_hdr(msg);
          if (h->nlmsg_type == RTM_NEWNEXTHOP && h->nlmsg_len >= NLMSG_LENGTH(sizeof(nhmsg))) out_.push_back(Decode(h));
        });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) {
      const NexthopInfo& nh = out_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", nh.id);
      o.Set("family", nh.family);
      o.Set("protocol", nh.protocol);
      if (!nh.gateway.empty()) o.Set("gateway", nh.gateway);
      if (nh.index) o.Set("index", nh.index);
      if (nh.blackhole) o.Set("blackhole", true);
      if (nh.fdb) o.Set("fdb", true);
      if (!nh.group.empty()) {
        Napi::Array g = Napi::Array::New(env, nh.group.size());
        for (size_t j = 0; j < nh.group.size(); j++) {
          Napi::Object m = Napi::Object::New(env);
          m.Set("id", nh.group[j].id);
          m.Set("weight", nh.group[j].weight);
          g.Set(j, m);
        }
        o.Set("group", g);
        o.Set("groupType", nh.groupType);
      }
      out.Set(i, o);
    }
    return out;
  }

 private:
  std::string ns_;
  std::vector<NexthopInfo> out_;
};

Napi::Value Add(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ChangeJob>(info[0].As<Napi::String>(), info[1].As<Napi::Object>(), info[2].ToBoolean().Value()));
}
Napi::Value Delete(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<DeleteJob>(info[0].As<Napi::String>(), info[1].As<Napi::Number>().Uint32Value()));
}
Napi::Value List(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ListJob>(info[0].As<Napi::String>()));
}

}  // namespace

void InitNexthop(Napi::Env env, Napi::Object exports) {
  exports.Set("nexthopAdd", Napi::Function::New(env, Add));
  exports.Set("nexthopDelete", Napi::Function::New(env, Delete));
  exports.Set("nexthopList", Napi::Function::New(env, List));
}

}  // namespace nk
