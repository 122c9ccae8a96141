// Traffic control through libnl-route-3's tc API: qdiscs, classes, filters (classifiers with
// actions) — add, replace, change, delete, list with statistics. lib/tc.ts validates every field
// and names the `tc` equivalents; lib/shape.ts composes these into links.shape().
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_gact.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/act/gact.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/class.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/matchall.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/fifo.h>
#include <netlink/route/qdisc/fq_codel.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/prio.h>
#include <netlink/route/qdisc/sfq.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include <arpa/inet.h>
#include <netlink/msg.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "rtnl/holders.h"
#include "nl_socket.h"

namespace nk {

namespace {

enum class Op { Add, Replace, Change, Delete };

Op ParseOp(const std::string& s) {
  if (s == "add") return Op::Add;
  if (s == "replace") return Op::Replace;
  if (s == "change") return Op::Change;
  return Op::Delete;
}

int FlagsOf(Op op) {
  switch (op) {
    case Op::Add: return NLM_F_CREATE | NLM_F_EXCL;
    case Op::Replace: return NLM_F_CREATE | NLM_F_REPLACE;
    default: return 0;
  }
}

const char* OpName(Op op, const char* what) {
  static thread_local std::string s;
  s = std::string(op == Op::Add ? "add " : op == Op::Replace ? "replace " : op == Op::Change ? "change " : "delete ") + what;
  return s.c_str();
}

// The kernel answers a qdisc, classifier or action it was built without with ENOENT
// ("Specified qdisc kind is unknown", "TC classifier not found", "Failed to load TC action
// module"). ENOENT means "no such object" everywhere else (missingOk deletes swallow it), so it
// becomes EOPNOTSUPP naming the kind the kernel lacks.
void MapMissingKind(OpError* err, const std::string& what) {
  if (err->err != ENOENT) return;
  const std::string& x = err->extack;
  if (x.find("kind is unknown") != std::string::npos || x.find("classifier not found") != std::string::npos ||
      x.find("Failed to load TC action") != std::string::npos || x.find("action module") != std::string::npos) {
    err->err = EOPNOTSUPP;
    err->detail = what + " is not supported by this kernel";
  }
}

// A message libnl refused to build: missing or invalid attributes are the caller's input.
int BuildErrno(int rc) {
  return rc == -NLE_MISSING_ATTR || rc == -NLE_INVAL || rc == -NLE_RANGE ? EINVAL : ENOMEM;
}

// ---- options, JS -> libnl --------------------------------------------------------------------

struct Opts {
  std::optional<int64_t> rate, burst, limit, latency, peakrate, mtu;   // tbf (bytes/s, bytes, us)
  std::optional<int64_t> defaultClass, r2q;                            // htb qdisc
  std::optional<int64_t> ceil, cburst, prio, quantum;                  // htb class
  std::optional<int64_t> delay, jitter, loss, lossCorrelation, duplicate, corrupt, reorder, reorderCorrelation,
      gap;                                                             // netem (us, u32 probabilities)
  std::optional<int64_t> target, interval, flows;                      // fq_codel (us)
  std::optional<bool> ecn;
  std::optional<int64_t> perturb;                                      // sfq (s)
  std::optional<int64_t> bands;                                        // prio
  std::vector<uint8_t> priomap;
};

Opts ReadOpts(const Napi::Object& parent) {
  Opts o;
  auto obj = OptObject(parent, "options");
  if (!obj) return o;
  const Napi::Object& p = *obj;
  o.rate = OptInt(p, "rate");
  o.burst = OptInt(p, "burst");
  o.limit = OptInt(p, "limit");
  o.latency = OptInt(p, "latency");
  o.peakrate = OptInt(p, "peakrate");
  o.mtu = OptInt(p, "mtu");
  o.defaultClass = OptInt(p, "defaultClass");
  o.r2q = OptInt(p, "r2q");
  o.ceil = OptInt(p, "ceil");
  o.cburst = OptInt(p, "cburst");
  o.prio = OptInt(p, "prio");
  o.quantum = OptInt(p, "quantum");
  o.delay = OptInt(p, "delay");
  o.jitter = OptInt(p, "jitter");
  o.loss = OptInt(p, "loss");
  o.lossCorrelation = OptInt(p, "lossCorrelation");
  o.duplicate = OptInt(p, "duplicate");
  o.corrupt = OptInt(p, "corrupt");
  o.reorder = OptInt(p, "reorder");
  o.reorderCorrelation = OptInt(p, "reorderCorrelation");
  o.gap = OptInt(p, "gap");
  o.target = OptInt(p, "target");
  o.interval = OptInt(p, "interval");
  o.flows = OptInt(p, "flows");
  o.ecn = OptBool(p, "ecn");
  o.perturb = OptInt(p, "perturb");
  o.bands = OptInt(p, "bands");
  Napi::Value pm = p.Get("priomap");
  if (pm.IsArray()) {
    Napi::Array a = pm.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) o.priomap.push_back(static_cast<uint8_t>(a.Get(i).As<Napi::Number>().Uint32Value()));
  }
  return o;
}

// The cell size tc picks for an MTU of 2047: 8 bytes (cell_log 3).
constexpr int kRateCell = 8;

bool ApplyQdiscOpts(rtnl_qdisc* q, const std::string& kind, const Opts& o, OpError* err) {
  int rc = 0;
  if (kind == "tbf") {
    if (o.rate) rtnl_qdisc_tbf_set_rate(q, static_cast<int>(*o.rate), static_cast<int>(o.burst.value_or(0)), kRateCell);
    if (o.peakrate) rc = rtnl_qdisc_tbf_set_peakrate(q, static_cast<int>(*o.peakrate), static_cast<int>(o.mtu.value_or(2048)), kRateCell);
    if (o.limit) rtnl_qdisc_tbf_set_limit(q, static_cast<int>(*o.limit));
    else if (o.latency && rc >= 0) rc = rtnl_qdisc_tbf_set_limit_by_latency(q, static_cast<int>(*o.latency));
  } else if (kind == "htb") {
    if (o.defaultClass) rc = rtnl_htb_set_defcls(q, static_cast<uint32_t>(*o.defaultClass));
    if (o.r2q && rc >= 0) rc = rtnl_htb_set_rate2quantum(q, static_cast<uint32_t>(*o.r2q));
  } else if (kind == "netem") {
    if (o.delay) rtnl_netem_set_delay(q, static_cast<int>(*o.delay));
    if (o.jitter) rtnl_netem_set_jitter(q, static_cast<int>(*o.jitter));
    if (o.loss) rtnl_netem_set_loss(q, static_cast<int>(static_cast<uint32_t>(*o.loss)));
    if (o.lossCorrelation) rtnl_netem_set_loss_correlation(q, static_cast<int>(static_cast<uint32_t>(*o.lossCorrelation)));
    if (o.duplicate) rtnl_netem_set_duplicate(q, static_cast<int>(static_cast<uint32_t>(*o.duplicate)));
    if (o.corrupt) rtnl_netem_set_corruption_probability(q, static_cast<int>(static_cast<uint32_t>(*o.corrupt)));
    if (o.reorder) rtnl_netem_set_reorder_probability(q, static_cast<int>(static_cast<uint32_t>(*o.reorder)));
    if (o.reorderCorrelation) rtnl_netem_set_reorder_correlation(q, static_cast<int>(static_cast<uint32_t>(*o.reorderCorrelation)));
    if (o.gap) rtnl_netem_set_gap(q, static_cast<int>(*o.gap));
    if (o.limit) rtnl_netem_set_limit(q, static_cast<int>(*o.limit));
  } else if (kind == "pfifo" || kind == "bfifo") {
    if (o.limit) rc = rtnl_qdisc_fifo_set_limit(q, static_cast<int>(*o.limit));
  } else if (kind == "fq_codel") {
    if (o.limit) rc = rtnl_qdisc_fq_codel_set_limit(q, static_cast<int>(*o.limit));
    if (o.target && rc >= 0) rc = rtnl_qdisc_fq_codel_set_target(q, static_cast<uint32_t>(*o.target));
    if (o.interval && rc >= 0) rc = rtnl_qdisc_fq_codel_set_interval(q, static_cast<uint32_t>(*o.interval));
    if (o.flows && rc >= 0) rc = rtnl_qdisc_fq_codel_set_flows(q, static_cast<int>(*o.flows));
    if (o.quantum && rc >= 0) rc = rtnl_qdisc_fq_codel_set_quantum(q, static_cast<uint32_t>(*o.quantum));
    if (o.ecn && rc >= 0) rc = rtnl_qdisc_fq_codel_set_ecn(q, *o.ecn ? 1 : 0);
  } else if (kind == "sfq") {
    if (o.quantum) rtnl_sfq_set_quantum(q, static_cast<int>(*o.quantum));
    if (o.limit) rtnl_sfq_set_limit(q, static_cast<int>(*o.limit));
    if (o.perturb) rtnl_sfq_set_perturb(q, static_cast<int>(*o.perturb));
  } else if (kind == "prio") {
    // libnl aborts the process (BUG()) when a prio qdisc lacks bands or priomap: always send both,
    // with tc's defaults where the caller gave none.
    static const uint8_t kDefaultMap[TC_PRIO_MAX + 1] = {1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    rtnl_qdisc_prio_set_bands(q, static_cast<int>(o.bands.value_or(3)));
    std::vector<uint8_t> map = o.priomap.empty() ? std::vector<uint8_t>(kDefaultMap, kDefaultMap + TC_PRIO_MAX + 1) : o.priomap;
    map.resize(TC_PRIO_MAX + 1, 0);
    rc = rtnl_qdisc_prio_set_priomap(q, map.data(), static_cast<int>(map.size()));
  }
  if (rc < 0) {
    err->Set(EINVAL, "set qdisc options", kind + ": " + nl_geterror(rc));
    return false;
  }
  return true;
}

bool ApplyClassOpts(rtnl_class* c, const std::string& kind, const Opts& o, OpError* err) {
  int rc = 0;
  if (kind == "htb") {
    if (o.rate) rc = rtnl_htb_set_rate64(c, static_cast<uint64_t>(*o.rate));
    if (o.ceil && rc >= 0) rc = rtnl_htb_set_ceil64(c, static_cast<uint64_t>(*o.ceil));
    if (o.burst && rc >= 0) rc = rtnl_htb_set_rbuffer(c, static_cast<uint32_t>(*o.burst));
    if (o.cburst && rc >= 0) rc = rtnl_htb_set_cbuffer(c, static_cast<uint32_t>(*o.cburst));
    if (o.prio && rc >= 0) rc = rtnl_htb_set_prio(c, static_cast<uint32_t>(*o.prio));
    if (o.quantum && rc >= 0) rc = rtnl_htb_set_quantum(c, static_cast<uint32_t>(*o.quantum));
  }
  if (rc < 0) {
    err->Set(EINVAL, "set class options", kind + ": " + nl_geterror(rc));
    return false;
  }
  return true;
}

// ---- statistics and options, libnl -> JS ------------------------------------------------------

struct Stats {
  uint64_t bytes = 0, packets = 0, drops = 0, overlimits = 0, requeues = 0, backlog = 0, qlen = 0;
};

Stats ReadStats(rtnl_tc* tc) {
  Stats s;
  s.bytes = rtnl_tc_get_stat(tc, RTNL_TC_BYTES);
  s.packets = rtnl_tc_get_stat(tc, RTNL_TC_PACKETS);
  s.drops = rtnl_tc_get_stat(tc, RTNL_TC_DROPS);
  s.overlimits = rtnl_tc_get_stat(tc, RTNL_TC_OVERLIMITS);
  s.requeues = rtnl_tc_get_stat(tc, RTNL_TC_REQUEUES);
  s.backlog = rtnl_tc_get_stat(tc, RTNL_TC_BACKLOG);
  s.qlen = rtnl_tc_get_stat(tc, RTNL_TC_QLEN);
  return s;
}

struct Action {
  std::string kind;
  int mirredAction = 0, policy = 0, gactAction = 0;
  uint32_t ifindex = 0;
  std::string dev;  // JS -> native only: the mirred target, resolved to `ifindex`
};

struct U32Key {
  uint32_t value = 0, mask = 0;
  int off = 0, offmask = 0;
};

// One qdisc, class or filter as the dumps report it (and as list() returns it).
struct Entry {
  int ifindex = 0;
  uint32_t parent = 0, handle = 0;
  std::string kind;
  Stats stats;
  std::vector<std::pair<std::string, double>> options;  // kind-specific, plain numbers
  std::vector<uint8_t> priomap;
  // filters
  int prio = -1, protocol = -1;
  std::optional<uint32_t> classid;
  std::vector<U32Key> keys;
  std::vector<Action> actions;
};

void ReadActions(rtnl_act* a, Entry* e) {
  for (; a != nullptr; a = rtnl_act_next(a)) {
    Action out;
    if (const char* k = rtnl_tc_get_kind(TC_CAST(a))) out.kind = k;
    if (out.kind == "mirred") {
      out.mirredAction = rtnl_mirred_get_action(a);
      out.policy = rtnl_mirred_get_policy(a);
      out.ifindex = rtnl_mirred_get_ifindex(a);
    }
    e->actions.push_back(out);
  }
}

void Put(Entry* e, const char* key, double v) { e->options.emplace_back(key, v); }

void ReadQdiscOpts(rtnl_qdisc* q, Entry* e) {
  const std::string& k = e->kind;
  if (k == "tbf") {
    Put(e, "rate", rtnl_qdisc_tbf_get_rate(q));
    Put(e, "burst", rtnl_qdisc_tbf_get_rate_bucket(q));
    Put(e, "limit", rtnl_qdisc_tbf_get_limit(q));
    int peak = rtnl_qdisc_tbf_get_peakrate(q);
    if (peak > 0) Put(e, "peakrate", peak);
  } else if (k == "htb") {
    Put(e, "defaultClass", rtnl_htb_get_defcls(q));
    Put(e, "r2q", rtnl_htb_get_rate2quantum(q));
  } else if (k == "netem") {
    Put(e, "delay", rtnl_netem_get_delay(q));
    Put(e, "jitter", rtnl_netem_get_jitter(q));
    Put(e, "loss", static_cast<uint32_t>(rtnl_netem_get_loss(q)));
    Put(e, "duplicate", static_cast<uint32_t>(rtnl_netem_get_duplicate(q)));
    int c = rtnl_netem_get_corruption_probability(q);
    Put(e, "corrupt", c < 0 ? 0 : static_cast<uint32_t>(c));
    int r = rtnl_netem_get_reorder_probability(q);
    Put(e, "reorder", r < 0 ? 0 : static_cast<uint32_t>(r));
    Put(e, "gap", rtnl_netem_get_gap(q));
    Put(e, "limit", rtnl_netem_get_limit(q));
  } else if (k == "pfifo" || k == "bfifo") {
    Put(e, "limit", rtnl_qdisc_fifo_get_limit(q));
  } else if (k == "fq_codel") {
    Put(e, "limit", rtnl_qdisc_fq_codel_get_limit(q));
    Put(e, "target", rtnl_qdisc_fq_codel_get_target(q));
    Put(e, "interval", rtnl_qdisc_fq_codel_get_interval(q));
    Put(e, "flows", rtnl_qdisc_fq_codel_get_flows(q));
    Put(e, "quantum", rtnl_qdisc_fq_codel_get_quantum(q));
  } else if (k == "sfq") {
    Put(e, "quantum", rtnl_sfq_get_quantum(q));
    Put(e, "limit", rtnl_sfq_get_limit(q));
    Put(e, "perturb", rtnl_sfq_get_perturb(q));
  } else if (k == "prio") {
    int bands = rtnl_qdisc_prio_get_bands(q);
    Put(e, "bands", bands);
    if (uint8_t* map = rtnl_qdisc_prio_get_priomap(q)) e->priomap.assign(map, map + TC_PRIO_MAX + 1);
  }
}

void ReadClassOpts(rtnl_class* c, Entry* e) {
  if (e->kind != "htb") return;
  uint64_t v = 0;
  if (rtnl_htb_get_rate64(c, &v) == 0) Put(e, "rate", static_cast<double>(v));
  if (rtnl_htb_get_ceil64(c, &v) == 0) Put(e, "ceil", static_cast<double>(v));
  Put(e, "burst", rtnl_htb_get_rbuffer(c));
  Put(e, "cburst", rtnl_htb_get_cbuffer(c));
  Put(e, "prio", rtnl_htb_get_prio(c));
  Put(e, "quantum", rtnl_htb_get_quantum(c));
  Put(e, "level", rtnl_htb_get_level(c));
}

void ReadFilter(rtnl_cls* f, Entry* e) {
  e->prio = rtnl_cls_get_prio(f);
  e->protocol = rtnl_cls_get_protocol(f);
  uint32_t id = 0;
  if (e->kind == "u32") {
    if (rtnl_u32_get_classid(f, &id) == 0) e->classid = id;
    for (uint8_t i = 0;; i++) {
      U32Key k;
      uint32_t val = 0, mask = 0;
      int off = 0, offmask = 0;
      if (rtnl_u32_get_key(f, i, &val, &mask, &off, &offmask) < 0) break;
      k.value = ntohl(val);
      k.mask = ntohl(mask);
      k.off = off;
      k.offmask = offmask;
      e->keys.push_back(k);
      if (i == 255) break;
    }
    ReadActions(rtnl_u32_get_action(f), e);
  } else if (e->kind == "matchall") {
    if (rtnl_mall_get_classid(f, &id) == 0) e->classid = id;
    rtnl_act* first = rtnl_mall_get_first_action(f);
    ReadActions(first, e);
    if (first != nullptr) rtnl_act_put(first);  // get_first_action hands out a reference
  }
}

void CommonFields(rtnl_tc* tc, Entry* e) {
  e->ifindex = rtnl_tc_get_ifindex(tc);
  e->parent = rtnl_tc_get_parent(tc);
  e->handle = rtnl_tc_get_handle(tc);
  if (const char* k = rtnl_tc_get_kind(tc)) e->kind = k;
  e->stats = ReadStats(tc);
}

Napi::Object EntryToJs(Napi::Env env, const Entry& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", e.ifindex);
  o.Set("parent", static_cast<double>(e.parent));
  o.Set("handle", static_cast<double>(e.handle));
  o.Set("kind", e.kind);
  Napi::Object s = Napi::Object::New(env);
  s.Set("bytes", static_cast<double>(e.stats.bytes));
  s.Set("packets", static_cast<double>(e.stats.packets));
  s.Set("drops", static_cast<double>(e.stats.drops));
  s.Set("overlimits", static_cast<double>(e.stats.overlimits));
  s.Set("requeues", static_cast<double>(e.stats.requeues));
  s.Set("backlog", static_cast<double>(e.stats.backlog));
  s.Set("qlen", static_cast<double>(e.stats.qlen));
  o.Set("stats", s);
  Napi::Object opts = Napi::Object::New(env);
  for (const auto& [k, v] : e.options) opts.Set(k, v);
  if (!e.priomap.empty()) {
    Napi::Array a = Napi::Array::New(env, e.priomap.size());
    for (size_t i = 0; i < e.priomap.size(); i++) a.Set(i, e.priomap[i]);
    o.Set("priomap", a);
  }
  o.Set("options", opts);
  if (e.prio >= 0) {
    o.Set("prio", e.prio);
    o.Set("protocol", e.protocol);
    if (e.classid) o.Set("classid", static_cast<double>(*e.classid));
    Napi::Array keys = Napi::Array::New(env, e.keys.size());
    for (size_t i = 0; i < e.keys.size(); i++) {
      Napi::Object k = Napi::Object::New(env);
      k.Set("value", static_cast<double>(e.keys[i].value));
      k.Set("mask", static_cast<double>(e.keys[i].mask));
      k.Set("off", e.keys[i].off);
      k.Set("offmask", e.keys[i].offmask);
      keys.Set(i, k);
    }
    o.Set("keys", keys);
    Napi::Array acts = Napi::Array::New(env, e.actions.size());
    for (size_t i = 0; i < e.actions.size(); i++) {
      Napi::Object a = Napi::Object::New(env);
      a.Set("kind", e.actions[i].kind);
      if (e.actions[i].kind == "mirred") {
        a.Set("mirredAction", e.actions[i].mirredAction);
        a.Set("policy", e.actions[i].policy);
        a.Set("ifindex", e.actions[i].ifindex);
      }
      acts.Set(i, a);
    }
    o.Set("actions", acts);
  }
  return o;
}

// ---- jobs ---------------------------------------------------------------------------------------

struct Common {
  std::string dev, kind;
  uint32_t parent = 0;
  std::optional<int64_t> handle;
};

Common ReadCommon(const Napi::Object& o) {
  Common c;
  c.dev = String(o, "dev");
  c.kind = String(o, "kind");
  c.parent = static_cast<uint32_t>(OptInt(o, "parent").value_or(TC_H_ROOT));
  c.handle = OptInt(o, "handle");
  return c;
}

// Sets kind first: libnl allocates the kind's private data on rtnl_tc_set_kind.
void ApplyCommon(rtnl_tc* tc, const Common& c, int ifindex) {
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, c.parent);
  if (c.handle) rtnl_tc_set_handle(tc, static_cast<uint32_t>(*c.handle));
  if (!c.kind.empty()) rtnl_tc_set_kind(tc, c.kind.c_str());
}

class QdiscJob : public Job {
 public:
  QdiscJob(std::string ns, Op op, const Napi::Object& o) : ns_(std::move(ns)), op_(op), c_(ReadCommon(o)), opts_(ReadOpts(o)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int ifindex;
    if (!LookupIfIndex(lease, c_.dev, &ifindex, &error)) return;
    NlPtr<rtnl_qdisc> q(rtnl_qdisc_alloc());
    if (!q) return error.Set(ENOMEM, OpName(op_, "qdisc"), c_.dev);
    ApplyCommon(TC_CAST(q.get()), c_, ifindex);
    nl_msg* msg = nullptr;
    int rc;
    if (op_ == Op::Delete) {
      rc = rtnl_qdisc_build_delete_request(q.get(), &msg);
    } else {
      if (!ApplyQdiscOpts(q.get(), c_.kind, opts_, &error)) return;
      // RTM_NEWQDISC without NLM_F_CREATE changes the existing qdisc (libnl's change request is deprecated).
      rc = rtnl_qdisc_build_add_request(q.get(), FlagsOf(op_), &msg);
    }
    if (rc < 0) return error.Set(BuildErrno(rc), OpName(op_, "qdisc"), c_.kind + ": " + nl_geterror(rc));
    if (!lease.Transact(msg, OpName(op_, "qdisc"), c_.dev, &error)) MapMissingKind(&error, "qdisc kind " + c_.kind);
  }

 private:
  std::string ns_;
  Op op_;
  Common c_;
  Opts opts_;
};

class ClassJob : public Job {
 public:
  ClassJob(std::string ns, Op op, const Napi::Object& o) : ns_(std::move(ns)), op_(op), c_(ReadCommon(o)), opts_(ReadOpts(o)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int ifindex;
    if (!LookupIfIndex(lease, c_.dev, &ifindex, &error)) return;
    NlPtr<rtnl_class> cl(rtnl_class_alloc());
    if (!cl) return error.Set(ENOMEM, OpName(op_, "class"), c_.dev);
    ApplyCommon(TC_CAST(cl.get()), c_, ifindex);
    nl_msg* msg = nullptr;
    int rc;
    if (op_ == Op::Delete) {
      rc = rtnl_class_build_delete_request(cl.get(), &msg);
    } else {
      if (!ApplyClassOpts(cl.get(), c_.kind, opts_, &error)) return;
      // libnl has no class change request; RTM_NEWTCLASS without flags changes an existing class.
      rc = rtnl_class_build_add_request(cl.get(), FlagsOf(op_), &msg);
    }
    if (rc < 0) return error.Set(BuildErrno(rc), OpName(op_, "class"), c_.kind + ": " + nl_geterror(rc));
    if (!lease.Transact(msg, OpName(op_, "class"), c_.dev, &error)) MapMissingKind(&error, "class kind " + c_.kind);
  }

 private:
  std::string ns_;
  Op op_;
  Common c_;
  Opts opts_;
};

class FilterJob : public Job {
 public:
  FilterJob(std::string ns, Op op, const Napi::Object& o) : ns_(std::move(ns)), op_(op), c_(ReadCommon(o)) {
    prio_ = OptInt(o, "prio");
    protocol_ = OptInt(o, "protocol");
    classid_ = OptInt(o, "classid");
    Napi::Value keys = o.Get("keys");
    if (keys.IsArray()) {
      Napi::Array a = keys.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Object k = a.Get(i).As<Napi::Object>();
        U32Key key;
        key.value = static_cast<uint32_t>(OptInt(k, "value").value_or(0));
        key.mask = static_cast<uint32_t>(OptInt(k, "mask").value_or(0));
        key.off = static_cast<int>(OptInt(k, "off").value_or(0));
        key.offmask = static_cast<int>(OptInt(k, "offmask").value_or(0));
        keys_.push_back(key);
      }
    }
    Napi::Value acts = o.Get("actions");
    if (acts.IsArray()) {
      Napi::Array a = acts.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Object x = a.Get(i).As<Napi::Object>();
        Action act;
        act.kind = String(x, "kind");
        act.mirredAction = static_cast<int>(OptInt(x, "mirredAction").value_or(TCA_EGRESS_REDIR));
        act.policy = static_cast<int>(OptInt(x, "policy").value_or(TC_ACT_STOLEN));
        act.gactAction = static_cast<int>(OptInt(x, "gactAction").value_or(TC_ACT_SHOT));
        act.dev = String(x, "dev");
        actions_.push_back(act);
      }
    }
  }

  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int ifindex;
    if (!LookupIfIndex(lease, c_.dev, &ifindex, &error)) return;
    NlPtr<rtnl_cls> f(rtnl_cls_alloc());
    if (!f) return error.Set(ENOMEM, OpName(op_, "filter"), c_.dev);
    ApplyCommon(TC_CAST(f.get()), c_, ifindex);
    if (prio_) rtnl_cls_set_prio(f.get(), static_cast<uint16_t>(*prio_));
    // A delete without a protocol matches any (0), as `tc filter del` does; a new filter sees all.
    rtnl_cls_set_protocol(f.get(), static_cast<uint16_t>(protocol_.value_or(op_ == Op::Delete ? 0 : ETH_P_ALL)));
    nl_msg* msg = nullptr;
    int rc;
    std::string actionKinds;
    if (op_ == Op::Delete) {
      rc = rtnl_cls_build_delete_request(f.get(), 0, &msg);
    } else {
      if (!Build(lease, f.get(), &actionKinds)) return;
      rc = op_ == Op::Change ? rtnl_cls_build_change_request(f.get(), 0, &msg)
                             : rtnl_cls_build_add_request(f.get(), FlagsOf(op_), &msg);
    }
    if (rc < 0) return error.Set(BuildErrno(rc), OpName(op_, "filter"), c_.kind + ": " + nl_geterror(rc));
    if (!lease.Transact(msg, OpName(op_, "filter"), c_.dev, &error)) {
      // The extack tells which part the kernel lacks: the classifier or an action module.
      bool action = error.extack.find("action") != std::string::npos;
      MapMissingKind(&error, action ? "tc action " + actionKinds : "filter kind " + c_.kind);
    }
  }

 private:
  bool Build(SocketLease& lease, rtnl_cls* f, std::string* actionKinds) {
    int rc = 0;
    if (c_.kind == "u32") {
      for (const auto& k : keys_) {
        rc = rtnl_u32_add_key_uint32(f, k.value, k.mask, k.off, k.offmask);
        if (rc < 0) break;
      }
      if (rc >= 0 && classid_) rc = rtnl_u32_set_classid(f, static_cast<uint32_t>(*classid_));
      if (rc >= 0) rc = rtnl_u32_set_cls_terminal(f);
    } else if (c_.kind == "matchall") {
      if (classid_) rc = rtnl_mall_set_classid(f, static_cast<uint32_t>(*classid_));
    }
    if (rc < 0) {
      error.Set(EINVAL, OpName(op_, "filter"), c_.kind + ": " + nl_geterror(rc));
      return false;
    }
    for (const auto& a : actions_) {
      std::unique_ptr<rtnl_act, NlRelease<rtnl_act_put>> act(rtnl_act_alloc());
      if (!act) {
        error.Set(ENOMEM, OpName(op_, "filter"), c_.dev);
        return false;
      }
      rtnl_tc_set_kind(TC_CAST(act.get()), a.kind.c_str());
      if (!actionKinds->empty()) *actionKinds += ",";
      *actionKinds += a.kind;
      if (a.kind == "mirred") {
        int target;
        if (!LookupIfIndex(lease, a.dev, &target, &error)) return false;
        rtnl_mirred_set_action(act.get(), a.mirredAction);
        rtnl_mirred_set_policy(act.get(), a.policy);
        rtnl_mirred_set_ifindex(act.get(), static_cast<uint32_t>(target));
      } else if (a.kind == "gact") {
        rtnl_gact_set_action(act.get(), a.gactAction);
      }
      // The classifier takes its own reference.
      if (c_.kind == "u32") rc = rtnl_u32_add_action(f, act.get());
      else if (c_.kind == "matchall") rc = rtnl_mall_append_action(f, act.get());
      else rc = -NLE_OPNOTSUPP;
      if (rc < 0) {
        error.Set(EINVAL, OpName(op_, "filter"), "actions on " + c_.kind + ": " + nl_geterror(rc));
        return false;
      }
    }
    return true;
  }

  std::string ns_;
  Op op_;
  Common c_;
  std::optional<int64_t> prio_, protocol_, classid_;
  std::vector<U32Key> keys_;
  std::vector<Action> actions_;
};

enum class What { Qdisc, Class, Filter };

class ListJob : public Job {
 public:
  ListJob(std::string ns, What what, std::string dev, uint32_t parent)
      : ns_(std::move(ns)), what_(what), dev_(std::move(dev)), parent_(parent) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int ifindex = 0;
    if (!dev_.empty() && !LookupIfIndex(lease, dev_, &ifindex, &error)) return;
    nl_cache* raw = nullptr;
    const char* op = what_ == What::Qdisc ? "list qdiscs" : what_ == What::Class ? "list classes" : "list filters";
    bool ok = lease.Call(op, dev_, &error, [&](nl_sock* sk) {
      if (what_ == What::Qdisc) return rtnl_qdisc_alloc_cache(sk, &raw);
      if (what_ == What::Class) return rtnl_class_alloc_cache(sk, ifindex, &raw);
      return rtnl_cls_alloc_cache(sk, ifindex, parent_, &raw);
    });
    if (!ok) return;
    NlCache cache(raw);
    for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
      rtnl_tc* tc = reinterpret_cast<rtnl_tc*>(o);
      if (ifindex != 0 && rtnl_tc_get_ifindex(tc) != ifindex) continue;
      Entry e;
      CommonFields(tc, &e);
      if (what_ == What::Qdisc) ReadQdiscOpts(reinterpret_cast<rtnl_qdisc*>(o), &e);
      else if (what_ == What::Class) ReadClassOpts(reinterpret_cast<rtnl_class*>(o), &e);
      else ReadFilter(reinterpret_cast<rtnl_cls*>(o), &e);
      out_.push_back(std::move(e));
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) a.Set(i, EntryToJs(env, out_[i]));
    return a;
  }

 private:
  std::string ns_;
  What what_;
  std::string dev_;
  uint32_t parent_;
  std::vector<Entry> out_;
};

// RTM_GETQDISC for one (ifindex, parent) — no dump: the kernel has no per-device qdisc dump, and a
// whole-namespace dump per link made shaping N links in one namespace cost N^2.
struct GetArg {
  std::optional<Entry>* out;
};

void OnQdiscObject(nl_object* o, void* p) {
  auto* a = static_cast<GetArg*>(p);
  rtnl_tc* tc = reinterpret_cast<rtnl_tc*>(o);
  Entry e;
  CommonFields(tc, &e);
  ReadQdiscOpts(reinterpret_cast<rtnl_qdisc*>(o), &e);
  *a->out = std::move(e);
}

int OnQdiscReply(nl_msg* msg, void* p) {
  nl_msg_parse(msg, OnQdiscObject, p);
  return NL_OK;
}

// Fills `out` with the qdisc at `parent` of `ifindex`, or leaves it empty when there is none (the
// kernel answers ENOENT or EINVAL for "no such qdisc", and nothing for its built-in noqueue).
bool GetQdisc(SocketLease& lease, int ifindex, uint32_t parent, std::optional<Entry>* out, OpError* err) {
  out->reset();
  // Without NLM_F_ECHO the kernel sends the answer only to the RTNLGRP_TC multicast group.
  nl_msg* msg = nlmsg_alloc_simple(RTM_GETQDISC, NLM_F_ECHO);
  if (msg == nullptr) {
    err->Set(ENOMEM, "get qdisc");
    return false;
  }
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = parent;
  if (nlmsg_append(msg, &t, sizeof(t), NLMSG_ALIGNTO) < 0) {
    nlmsg_free(msg);
    err->Set(ENOMEM, "get qdisc");
    return false;
  }
  GetArg arg{out};
  OpError local;
  if (!lease.Request(msg, "get qdisc", "", &local, OnQdiscReply, &arg)) {
    if (local.err == ENOENT || local.err == EINVAL) {
      out->reset();
      return true;
    }
    *err = local;
    return false;
  }
  return true;
}

// Everything links.shape()/getShape() need about one link, in one hop and without dumps: its
// root qdisc (and the leaf below a netem root), its ingress qdisc, and the same for its ifb.
class LinkStateJob : public Job {
 public:
  LinkStateJob(std::string ns, std::string dev, std::string ifb) : ns_(std::move(ns)), dev_(std::move(dev)), ifb_(std::move(ifb)) {}
  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    if (!LookupIfIndex(lease, dev_, &index_, &error)) return;
    if (!Side(lease, index_, &root_, &child_)) return;
    if (!GetQdisc(lease, index_, TC_H_INGRESS, &ingress_, &error)) return;
    std::string ifb = ifb_.empty() ? "nkifb" + std::to_string(index_) : ifb_;
    OpError missing;
    if (!LookupIfIndex(lease, ifb, &ifbIndex_, &missing)) {
      if (missing.err != ENOENT) error = missing;
      ifbIndex_ = 0;
      return;
    }
    Side(lease, ifbIndex_, &ifbRoot_, &ifbChild_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", index_);
    o.Set("ifbIndex", ifbIndex_);
    auto put = [&](const char* k, const std::optional<Entry>& e) {
      if (e) o.Set(k, EntryToJs(env, *e));
    };
    put("root", root_);
    put("child", child_);
    put("ingress", ingress_);
    put("ifbRoot", ifbRoot_);
    put("ifbChild", ifbChild_);
    return o;
  }

 private:
  bool Side(SocketLease& lease, int ifindex, std::optional<Entry>* root, std::optional<Entry>* child) {
    if (!GetQdisc(lease, ifindex, TC_H_ROOT, root, &error)) return false;
    // The kernel's default (noqueue, pfifo_fast, mq) has handle 0: no shape.
    if (*root && (*root)->handle == 0) root->reset();
    if (*root && (*root)->kind == "netem") {
      if (!GetQdisc(lease, ifindex, (*root)->handle | 1, child, &error)) return false;
      if (*child && (*child)->kind != "tbf") child->reset();
    }
    return true;
  }

  std::string ns_, dev_, ifb_;
  int index_ = 0, ifbIndex_ = 0;
  std::optional<Entry> root_, child_, ingress_, ifbRoot_, ifbChild_;
};

Napi::Value LinkState(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<LinkStateJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(), ""));
}

Napi::Value Qdisc(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<QdiscJob>(info[0].As<Napi::String>(), ParseOp(info[1].As<Napi::String>()), info[2].As<Napi::Object>()));
}
Napi::Value Class(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ClassJob>(info[0].As<Napi::String>(), ParseOp(info[1].As<Napi::String>()), info[2].As<Napi::Object>()));
}
Napi::Value Filter(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<FilterJob>(info[0].As<Napi::String>(), ParseOp(info[1].As<Napi::String>()), info[2].As<Napi::Object>()));
}
Napi::Value List(const Napi::CallbackInfo& info) {
  std::string what = info[1].As<Napi::String>();
  std::string dev = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  uint32_t parent = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  What w = what == "qdisc" ? What::Qdisc : what == "class" ? What::Class : What::Filter;
  return Submit(info.Env(), std::make_unique<ListJob>(info[0].As<Napi::String>(), w, dev, parent));
}

}  // namespace

void InitTc(Napi::Env env, Napi::Object exports) {
  exports.Set("tcQdisc", Napi::Function::New(env, Qdisc));
  exports.Set("tcClass", Napi::Function::New(env, Class));
  exports.Set("tcFilter", Napi::Function::New(env, Filter));
  exports.Set("tcList", Napi::Function::New(env, List));
  exports.Set("tcLinkState", Napi::Function::New(env, LinkState));
}

}  // namespace nk
