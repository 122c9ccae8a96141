// Policy routing rules (FIB rules, `ip rule`): add, delete, list, IPv4 and IPv6. The ip(8)
// equivalents are in lib/rules.ts.
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netlink/route/rule.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "rtnl/dump.h"
#include "rtnl/holders.h"
#include "nl_socket.h"

namespace nk {

namespace {

// One rule in plain data: what lib/ sends and what a dump gives back.
struct RuleInfo {
  int family = AF_INET;
  std::optional<int64_t> priority, fwmark, fwmask, table, action, tos, ipProto;
  std::string src, dst, iif, oif;
  int srcLen = 0, dstLen = 0;
  std::optional<std::pair<int, int>> sport, dport;
};

std::optional<std::pair<int, int>> ReadRange(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return std::nullopt;
  auto a = v.As<Napi::Array>();
  return std::make_pair(a.Get(0u).As<Napi::Number>().Int32Value(), a.Get(1u).As<Napi::Number>().Int32Value());
}

RuleInfo FromJs(const Napi::Object& o) {
  RuleInfo r;
  r.family = static_cast<int>(OptInt(o, "family").value_or(AF_INET));
  r.priority = OptInt(o, "priority");
  r.src = String(o, "src");
  r.srcLen = static_cast<int>(OptInt(o, "srcLen").value_or(0));
  r.dst = String(o, "dst");
  r.dstLen = static_cast<int>(OptInt(o, "dstLen").value_or(0));
  r.iif = String(o, "iif");
  r.oif = String(o, "oif");
  r.fwmark = OptInt(o, "fwmark");
  r.fwmask = OptInt(o, "fwmask");
  r.table = OptInt(o, "table");
  r.action = OptInt(o, "action");
  r.tos = OptInt(o, "tos");
  r.ipProto = OptInt(o, "ipProto");
  r.sport = ReadRange(o, "sport");
  r.dport = ReadRange(o, "dport");
  return r;
}

RuleInfo ReadRule(rtnl_rule* r) {
  RuleInfo info;
  info.family = rtnl_rule_get_family(r);
  info.priority = rtnl_rule_get_prio(r);
  if (nl_addr* a = rtnl_rule_get_src(r)) {
    info.src = AddrToString(a);
    info.srcLen = nl_addr_get_prefixlen(a);
  }
  if (nl_addr* a = rtnl_rule_get_dst(r)) {
    info.dst = AddrToString(a);
    info.dstLen = nl_addr_get_prefixlen(a);
  }
  if (const char* n = rtnl_rule_get_iif(r)) info.iif = n;
  if (const char* n = rtnl_rule_get_oif(r)) info.oif = n;
  // libnl answers UINT32_MAX for "not set"; a mask of all ones is the kernel's default too.
  uint32_t mark = rtnl_rule_get_mark(r), mask = rtnl_rule_get_mask(r);
  if (mark != UINT32_MAX && mark != 0) info.fwmark = mark;
  if (info.fwmark && mask != UINT32_MAX) info.fwmask = mask;
  info.table = rtnl_rule_get_table(r);
  info.action = rtnl_rule_get_action(r);
  if (uint8_t tos = rtnl_rule_get_dsfield(r)) info.tos = tos;
  uint8_t proto;
  if (rtnl_rule_get_ipproto(r, &proto) == 0 && proto != 0) info.ipProto = proto;
  uint16_t start, end;
  if (rtnl_rule_get_sport(r, &start, &end) == 0) info.sport = std::make_pair(int(start), int(end));
  if (rtnl_rule_get_dport(r, &start, &end) == 0) info.dport = std::make_pair(int(start), int(end));
  return info;
}

Napi::Object ToJs(Napi::Env env, const RuleInfo& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", r.family);
  if (r.priority) o.Set("priority", *r.priority);
  if (!r.src.empty()) {
    o.Set("src", r.src);
    o.Set("srcLen", r.srcLen);
  }
  if (!r.dst.empty()) {
    o.Set("dst", r.dst);
    o.Set("dstLen", r.dstLen);
  }
  if (!r.iif.empty()) o.Set("iif", r.iif);
  if (!r.oif.empty()) o.Set("oif", r.oif);
  if (r.fwmark) o.Set("fwmark", *r.fwmark);
  if (r.fwmask) o.Set("fwmask", *r.fwmask);
  if (r.table) o.Set("table", *r.table);
  if (r.action) o.Set("action", *r.action);
  if (r.tos) o.Set("tos", *r.tos);
  if (r.ipProto) o.Set("ipProto", *r.ipProto);
  auto range = [&](const char* key, const std::optional<std::pair<int, int>>& p) {
    if (!p) return;
    Napi::Array a = Napi::Array::New(env, 2);
    a.Set(0u, p->first);
    a.Set(1u, p->second);
    o.Set(key, a);
  };
  range("sport", r.sport);
  range("dport", r.dport);
  return o;
}

class ChangeJob : public Job {
 public:
  ChangeJob(std::string ns, const Napi::Object& o, bool add) : ns_(std::move(ns)), add_(add), rule_(FromJs(o)) {}

  void Execute() override {
    const char* op = add_ ? "add rule" : "delete rule";
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    NlPtr<rtnl_rule> r(rtnl_rule_alloc());
    rtnl_rule_set_family(r.get(), rule_.family);
    if (rule_.priority) rtnl_rule_set_prio(r.get(), static_cast<uint32_t>(*rule_.priority));
    if (!SetAddr(r.get(), rule_.src, rule_.srcLen, rtnl_rule_set_src, op)) return;
    if (!SetAddr(r.get(), rule_.dst, rule_.dstLen, rtnl_rule_set_dst, op)) return;
    if (!rule_.iif.empty()) rtnl_rule_set_iif(r.get(), rule_.iif.c_str());
    if (!rule_.oif.empty()) rtnl_rule_set_oif(r.get(), rule_.oif.c_str());
    if (rule_.fwmark) rtnl_rule_set_mark(r.get(), static_cast<uint32_t>(*rule_.fwmark));
    if (rule_.fwmask) rtnl_rule_set_mask(r.get(), static_cast<uint32_t>(*rule_.fwmask));
    if (rule_.table) rtnl_rule_set_table(r.get(), static_cast<uint32_t>(*rule_.table));
    if (rule_.action) rtnl_rule_set_action(r.get(), static_cast<uint8_t>(*rule_.action));
    if (rule_.tos) rtnl_rule_set_dsfield(r.get(), static_cast<uint8_t>(*rule_.tos));
    if (rule_.ipProto) rtnl_rule_set_ipproto(r.get(), static_cast<uint8_t>(*rule_.ipProto));
    if (rule_.sport) rtnl_rule_set_sport_range(r.get(), static_cast<uint16_t>(rule_.sport->first), static_cast<uint16_t>(rule_.sport->second));
    if (rule_.dport) rtnl_rule_set_dport_range(r.get(), static_cast<uint16_t>(rule_.dport->first), static_cast<uint16_t>(rule_.dport->second));
    nl_msg* msg = nullptr;
    // NLM_F_EXCL: an identical rule is EEXIST, as `ip rule add` reports it.
    int rc = add_ ? rtnl_rule_build_add_request(r.get(), NLM_F_CREATE | NLM_F_EXCL, &msg) : rtnl_rule_build_delete_request(r.get(), 0, &msg);
    if (rc < 0) {
      error.Set(ENOMEM, op, "");
      return;
    }
    std::string what = rule_.priority ? "priority " + std::to_string(*rule_.priority) : "";
    if (!rule_.src.empty()) what += " from " + rule_.src + "/" + std::to_string(rule_.srcLen);
    if (!rule_.dst.empty()) what += " to " + rule_.dst + "/" + std::to_string(rule_.dstLen);
    if (!lease.Transact(msg, op, what, &error) && !add_ && error.err == ESRCH) error.err = ENOENT;
  }

 private:
  bool SetAddr(rtnl_rule* r, const std::string& text, int len, int (*set)(rtnl_rule*, nl_addr*), const char* op) {
    if (text.empty()) return true;
    NlAddr a = ParseAddr(text, rule_.family);
    if (!a) {
      error.Set(EINVAL, op, "bad address " + text);
      return false;
    }
    nl_addr_set_prefixlen(a.get(), len);
    if (set(r, a.get()) < 0) {
      error.Set(EINVAL, op, "address family of " + text);
      return false;
    }
    return true;
  }

  std::string ns_;
  bool add_;
  RuleInfo rule_;
};

class ListJob : public Job {
 public:
  ListJob(std::string ns, int family) : ns_(std::move(ns)), family_(family) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    DumpEach(
        lease, RTM_GETRULE, family_, "list rules", &error, [&] { rules_.clear(); },
        [&](nl_object* o, const nlmsghdr*) {
          auto* r = reinterpret_cast<rtnl_rule*>(o);
          int f = rtnl_rule_get_family(r);
          if (f == AF_INET || f == AF_INET6) rules_.push_back(ReadRule(r));
        });
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, rules_.size());
    for (size_t i = 0; i < rules_.size(); i++) out.Set(i, ToJs(env, rules_[i]));
    return out;
  }

 private:
  std::string ns_;
  int family_;
  std::vector<RuleInfo> rules_;
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

void InitRule(Napi::Env env, Napi::Object exports) {
  exports.Set("ruleAdd", Napi::Function::New(env, Add));
  exports.Set("ruleDelete", Napi::Function::New(env, Delete));
  exports.Set("ruleList", Napi::Function::New(env, List));
}

}  // namespace nk
