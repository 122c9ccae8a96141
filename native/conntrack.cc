// Conntrack entries over raw ctnetlink (NETLINK_NETFILTER, NFNL_SUBSYS_CTNETLINK) with libnl's
// core message helpers, inside the target namespace.
//
// Why: a NAT binding lives in the conntrack entry made by a flow's first packet. When a port
// forward or service is removed or changed, a UDP client that keeps sending keeps matching its
// old entry and keeps reaching the old backend; deleting those entries makes the next packet go
// through the (new) rules. lib/nat.ts lists entries, picks the ones of the removed rule, and
// deletes exactly those (like conntrack -D, and like the CNI portmap plugin and kube-proxy do).
// Only libnl-3 core is needed: no libnetfilter_conntrack, no libnl-nf.
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "rtnl/holders.h"

namespace nk {

namespace {

struct CtTuple {
  std::string src, dst;
  int sport = 0, dport = 0;
};

struct CtEntry {
  int family = 0;  // 4 or 6
  int proto = 0;   // IPPROTO_*
  uint32_t id = 0;
  bool has_id = false;
  CtTuple orig, reply;
};

int AfOf(int family) { return family == 6 ? AF_INET6 : AF_INET; }

std::string AddrText(nlattr* a, int af) {
  if (a == nullptr) return "";
  char buf[INET6_ADDRSTRLEN] = {0};
  size_t need = af == AF_INET6 ? 16 : 4;
  if (static_cast<size_t>(nla_len(a)) < need) return "";
  inet_ntop(af, nla_data(a), buf, sizeof(buf));
  return buf;
}

bool ParseTuple(nlattr* nest, int af, CtTuple* t, int* proto) {
  nlattr* tb[CTA_TUPLE_MAX + 1] = {};
  if (nest == nullptr || nla_parse_nested(tb, CTA_TUPLE_MAX, nest, nullptr) < 0) return false;
  if (tb[CTA_TUPLE_IP]) {
    nlattr* ip[CTA_IP_MAX + 1] = {};
    if (nla_parse_nested(ip, CTA_IP_MAX, tb[CTA_TUPLE_IP], nullptr) < 0) return false;
    t->src = AddrText(af == AF_INET6 ? ip[CTA_IP_V6_SRC] : ip[CTA_IP_V4_SRC], af);
    t->dst = AddrText(af == AF_INET6 ? ip[CTA_IP_V6_DST] : ip[CTA_IP_V4_DST], af);
  }
  if (tb[CTA_TUPLE_PROTO]) {
    nlattr* p[CTA_PROTO_MAX + 1] = {};
    if (nla_parse_nested(p, CTA_PROTO_MAX, tb[CTA_TUPLE_PROTO], nullptr) < 0) return false;
    if (p[CTA_PROTO_NUM]) *proto = nla_get_u8(p[CTA_PROTO_NUM]);
    if (p[CTA_PROTO_SRC_PORT]) t->sport = ntohs(nla_get_u16(p[CTA_PROTO_SRC_PORT]));
    if (p[CTA_PROTO_DST_PORT]) t->dport = ntohs(nla_get_u16(p[CTA_PROTO_DST_PORT]));
  }
  return true;
}

struct DumpState {
  int family;
  int want_proto;
  std::vector<CtEntry>* out;
};

int OnEntry(nl_msg* msg, void* arg) {
  auto* st = static_cast<DumpState*>(arg);
  nlmsghdr* nlh = nlmsg_hdr(msg);
  nlattr* tb[CTA_MAX + 1] = {};
  if (nlmsg_parse(nlh, sizeof(nfgenmsg), tb, CTA_MAX, nullptr) < 0) return NL_SKIP;
  CtEntry e;
  e.family = st->family;
  int af = AfOf(st->family);
  if (!ParseTuple(tb[CTA_TUPLE_ORIG], af, &e.orig, &e.proto)) return NL_SKIP;
  int reply_proto = 0;
  if (!ParseTuple(tb[CTA_TUPLE_REPLY], af, &e.reply, &reply_proto)) return NL_SKIP;
  if (tb[CTA_ID]) {
    e.id = ntohl(nla_get_u32(tb[CTA_ID]));
    e.has_id = true;
  }
  if (st->want_proto == 0 || e.proto == st->want_proto) st->out->push_back(std::move(e));
  return NL_OK;
}

// Records the kernel's errno of a failed request (libnl would fold it into an NLE_* code).
int OnError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  *static_cast<int*>(arg) = -e->error;
  return NL_STOP;
}

NlSock OpenCtSocket(OpError* err) {
  NlSock sk(nl_socket_alloc());
  if (!sk) {
    err->Set(ENOMEM, "open conntrack socket");
    return NlSock();
  }
  if (nl_connect(sk.get(), NETLINK_NETFILTER) < 0) {
    err->Set(errno ? errno : EIO, "open conntrack socket");
    return NlSock();
  }
  return sk;
}

NlMsg CtMessage(int type, int flags, int family) {
  NlMsg msg(nlmsg_alloc_simple((NFNL_SUBSYS_CTNETLINK << 8) | type, flags));
  if (!msg) return msg;
  nfgenmsg hdr{};
  hdr.nfgen_family = static_cast<uint8_t>(AfOf(family));
  hdr.version = NFNETLINK_V0;
  hdr.res_id = 0;
  if (nlmsg_append(msg.get(), &hdr, sizeof(hdr), NLMSG_ALIGNTO) < 0) return NlMsg();
  return msg;
}

bool PutTuple(nl_msg* msg, int attr, int family, int proto, const CtTuple& t) {
  int af = AfOf(family);
  unsigned char src[16], dst[16];
  if (inet_pton(af, t.src.c_str(), src) != 1 || inet_pton(af, t.dst.c_str(), dst) != 1) return false;
  size_t len = af == AF_INET6 ? 16 : 4;
  nlattr* tuple = nla_nest_start(msg, attr);
  nlattr* ip = nla_nest_start(msg, CTA_TUPLE_IP);
  nla_put(msg, af == AF_INET6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, len, src);
  nla_put(msg, af == AF_INET6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, len, dst);
  nla_nest_end(msg, ip);
  nlattr* p = nla_nest_start(msg, CTA_TUPLE_PROTO);
  nla_put_u8(msg, CTA_PROTO_NUM, static_cast<uint8_t>(proto));
  nla_put_u16(msg, CTA_PROTO_SRC_PORT, htons(static_cast<uint16_t>(t.sport)));
  nla_put_u16(msg, CTA_PROTO_DST_PORT, htons(static_cast<uint16_t>(t.dport)));
  nla_nest_end(msg, p);
  nla_nest_end(msg, tuple);
  return true;
}

// Equivalent to: `conntrack -L -f ipv4|ipv6 [-p PROTO]`
class CtListJob : public Job {
 public:
  CtListJob(std::string ns, int family, int proto) : ns_(std::move(ns)), family_(family), proto_(proto) {}
  void Execute() override {
    NsGuard guard(ns_, &error);
    if (!guard.ok()) return;
    NlSock sk = OpenCtSocket(&error);
    if (!sk) return;
    NlMsg msg = CtMessage(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, family_);
    if (!msg) {
      error.Set(ENOMEM, "list conntrack");
      return;
    }
    int kernel_err = 0;
    DumpState st{family_, proto_, &entries_};
    nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, OnEntry, &st);
    nl_socket_modify_err_cb(sk.get(), NL_CB_CUSTOM, OnError, &kernel_err);
    int rc = nl_send_auto(sk.get(), msg.get());
    if (rc >= 0) rc = nl_recvmsgs_default(sk.get());
    if (rc < 0) {
      // An interrupted dump (the table changed under us) is worth one retry by the caller; we
      // report it rather than return a partial list.
      error.Set(kernel_err ? kernel_err : (rc == -NLE_DUMP_INTR ? EINTR : EIO), "list conntrack", nl_geterror(rc));
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, entries_.size());
    for (size_t i = 0; i < entries_.size(); i++) {
      const CtEntry& e = entries_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("family", e.family);
      o.Set("proto", e.proto);
      if (e.has_id) o.Set("id", static_cast<double>(e.id));
      auto tuple = [&](const CtTuple& t) {
        Napi::Object x = Napi::Object::New(env);
        x.Set("src", t.src);
        x.Set("dst", t.dst);
        x.Set("sport", t.sport);
        x.Set("dport", t.dport);
        return x;
      };
      o.Set("orig", tuple(e.orig));
      o.Set("reply", tuple(e.reply));
      arr.Set(static_cast<uint32_t>(i), o);
    }
    return arr;
  }

 private:
  std::string ns_;
  int family_, proto_;
  std::vector<CtEntry> entries_;
};

// Equivalent to: `conntrack -D -s SRC -d DST -p PROTO --sport S --dport D` per entry.
// Entries already gone (ENOENT: the flow ended meanwhile) are not an error.
class CtDeleteJob : public Job {
 public:
  CtDeleteJob(std::string ns, std::vector<CtEntry> entries) : ns_(std::move(ns)), entries_(std::move(entries)) {}
  void Execute() override {
    NsGuard guard(ns_, &error);
    if (!guard.ok()) return;
    NlSock sk = OpenCtSocket(&error);
    if (!sk) return;
    int kernel_err = 0;
    nl_socket_modify_err_cb(sk.get(), NL_CB_CUSTOM, OnError, &kernel_err);
    for (const CtEntry& e : entries_) {
      NlMsg msg = CtMessage(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, e.family);
      if (!msg || !PutTuple(msg.get(), CTA_TUPLE_ORIG, e.family, e.proto, e.orig)) {
        error.Set(EINVAL, "delete conntrack", "bad tuple " + e.orig.src + " -> " + e.orig.dst);
        return;
      }
      // The id makes sure we delete the entry we listed, not a new flow that reuses its tuple.
      if (e.has_id) nla_put_u32(msg.get(), CTA_ID, htonl(e.id));
      kernel_err = 0;
      int rc = nl_send_auto(sk.get(), msg.get());
      if (rc >= 0) rc = nl_wait_for_ack(sk.get());
      if (rc >= 0) {
        deleted_++;
      } else if (kernel_err != ENOENT) {
        error.Set(kernel_err ? kernel_err : EIO, "delete conntrack", e.orig.src + " -> " + e.orig.dst);
        return;
      }
    }
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, deleted_); }

 private:
  std::string ns_;
  std::vector<CtEntry> entries_;
  int deleted_ = 0;
};

CtTuple TupleFromJs(const Napi::Object& o) {
  CtTuple t;
  t.src = String(o, "src");
  t.dst = String(o, "dst");
  t.sport = static_cast<int>(OptInt(o, "sport").value_or(0));
  t.dport = static_cast<int>(OptInt(o, "dport").value_or(0));
  return t;
}

Napi::Value List(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<CtListJob>(info[0].As<Napi::String>(), info[1].As<Napi::Number>().Int32Value(),
                                                        info[2].As<Napi::Number>().Int32Value()));
}

Napi::Value Delete(const Napi::CallbackInfo& info) {
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<CtEntry> entries;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object o = arr.Get(i).As<Napi::Object>();
    CtEntry e;
    e.family = static_cast<int>(OptInt(o, "family").value_or(4));
    e.proto = static_cast<int>(OptInt(o, "proto").value_or(0));
    if (auto id = OptInt(o, "id")) {
      e.id = static_cast<uint32_t>(*id);
      e.has_id = true;
    }
    if (auto orig = OptObject(o, "orig")) e.orig = TupleFromJs(*orig);
    entries.push_back(std::move(e));
  }
  return Submit(info.Env(), std::make_unique<CtDeleteJob>(info[0].As<Napi::String>(), std::move(entries)));
}

}  // namespace

void InitConntrack(Napi::Env env, Napi::Object exports) {
  exports.Set("conntrackList", Napi::Function::New(env, List));
  exports.Set("conntrackDelete", Napi::Function::New(env, Delete));
}

}  // namespace nk
