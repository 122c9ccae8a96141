// Typed event streams (`ip monitor link address route neigh`), the native half of lib/watch.ts.
//
// A subscription owns two rtnetlink sockets, both opened inside the watched namespace on a worker
// thread (a socket stays bound to the namespace it was created in): one joined to the multicast
// groups asked for, one for the dumps that start the stream and repair it after a loss.
//
// One addon thread per Node environment (main thread or Worker), `nk-watch`, serves every
// subscription of that environment with epoll; it is stopped and joined when the environment is
// cleaned up (a terminated Worker), and never delivers to an environment that is gone. Reading is
// cheap and never blocks, so one thread scales to hundreds of watched namespaces where a thread each would not;
// it never changes namespace (sockets are opened by the worker pool) and only dumps, on its own
// per-subscription socket, when a stream starts or must resync.
//
// Events reach JavaScript in batches through one thread-safe function per subscription. The number
// of batches in flight per subscription is capped (kMaxInflight); at the cap, and while JavaScript
// has paused the subscription (its queue limit is reached), the thread stops reading that socket.
// The kernel then buffers (receive buffer sized for bursts) and, once full, drops and reports
// ENOBUFS; the stream answers with a resync: it discards what the socket still holds (it predates
// the loss) and delivers a fresh dump, after which events continue. A consumer that replaces its
// state with the dump and applies later events ends with the true state. Memory is bounded by the
// receive buffer, kMaxInflight batches of at most kMaxBatch events, and the JavaScript queue limit.
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "addon.h"
#include "addr.h"
#include "fdb.h"
#include "link.h"
#include "neigh.h"
#include "nl_raw.h"
#include "rtnl/dump.h"
#include "rtnl/holders.h"
#include "route.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace nk {

namespace {

// What a subscription asks for (lib/watch.ts sends the same bits). Links are always joined: the
// other kinds name their device, and lib/ keeps the index -> name map from link events. Route
// streams get address events as well (see Wanted()).
enum Kinds : uint32_t { kLinks = 1, kAddrs = 2, kRoutes = 4, kNeighs = 8, kFdb = 16 };

constexpr int kMaxInflight = 4;     // batches handed to JavaScript and not yet delivered
constexpr size_t kMaxBatch = 512;   // events per batch (one turn of one subscription)
constexpr size_t kRecvBuffer = 1 << 16;
constexpr int kDumpTimeoutSec = 10;  // a dump that stalls this long fails the stream
constexpr size_t kMaxDrain = 1 << 16; // messages discarded per turn before a resync's dump

struct Event {
  enum Kind { Link, Addr, Route, Neigh, Fdb } kind;
  bool del = false;
  std::variant<LinkInfo, AddrInfo, RouteInfo, NeighInfo, FdbInfo> obj;
};

struct Snapshot {
  std::string reason;  // "initial" or "overflow"
  std::vector<LinkInfo> links;
  std::vector<AddrInfo> addrs;
  std::vector<RouteInfo> routes;
  std::vector<NeighInfo> neighs;
  std::vector<FdbInfo> fdb;
};

struct Subscription;
class Watcher;

// One delivery to JavaScript: an optional snapshot first, then events in kernel order; or the
// end of the stream (closed, or failed with `error`).
struct Batch {
  std::shared_ptr<Subscription> sub;
  std::unique_ptr<Snapshot> resync;
  std::vector<Event> events;
  OpError error;
  bool closed = false;
};

void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Batch* raw);
void DeliverJs(Napi::Env env, Napi::Function fn, const Batch& b);
using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, CallJs>;

struct Subscription {
  uint32_t id = 0;
  std::shared_ptr<EnvLink> env;  // the environment the batches go to
  Watcher* watcher = nullptr;    // that environment's watch thread
  std::string ns;
  uint32_t kinds = 0;
  int receiveBuffer = 0;
  Fd events;     // multicast socket, non-blocking
  NlSock dumps;  // dump socket (blocking, with a receive timeout)
  Tsfn tsfn;
  std::atomic<int> inflight{0};

  // Owned by the nk-watch thread once registered.
  bool paused = false;
  bool armed = false;
  bool resyncPending = true;
  const char* resyncReason = "initial";

  // The producer's end of the thread-safe function: called once, by whoever ends the
  // subscription (the nk-watch thread, or the open job that failed). The function finalises once
  // JavaScript has had every batch queued before. When the environment is gone, Node has closed
  // the function itself and it must not be touched.
  void ReleaseJs() {
    if (released.exchange(true)) return;
    std::lock_guard<std::mutex> lock(env->mu);
    if (env->alive) tsfn.Release();
  }
  // Hands a batch to JavaScript; false when the environment is gone or going.
  bool Call(Batch* b) {
    std::lock_guard<std::mutex> lock(env->mu);
    return env->alive && tsfn.BlockingCall(b) == napi_ok;
  }
  std::atomic<bool> released{false};
};

// ---- The nk-watch thread ----------------------------------------------------------------------

class Watcher : public EnvResource {
 public:
  // Sets up epoll and the wake-up eventfd; on failure (EMFILE, ENFILE, ENOMEM) fills `err` and
  // starts no thread, so a caller out of descriptors gets a typed error, not a stream that never
  // becomes ready or a thread spinning on a descriptor that does not exist.
  explicit Watcher(OpError* err) {
    ep_ = Fd(epoll_create1(EPOLL_CLOEXEC));
    if (!ep_.valid()) {
      err->Set(errno, "watch", "epoll_create1");
      return;
    }
    wake_ = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) {
      err->Set(errno, "watch", "eventfd");
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;  // subscription ids start at 1
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
      err->Set(errno, "watch", "epoll_ctl");
      return;
    }
    thread_ = std::thread([this] { Run(); });
  }

  ~Watcher() override {
    if (!thread_.joinable()) return;
    Post([](Watcher& w) { w.stopping_ = true; });
    thread_.join();
  }

  uint32_t NextId() { return nextId_++; }  // the environment's own thread only

  void Add(std::shared_ptr<Subscription> s) {
    Post([s](Watcher& w) { w.subs_[s->id] = s; });
  }
  void Pause(uint32_t id, bool paused) {
    Post([id, paused](Watcher& w) {
      auto it = w.subs_.find(id);
      if (it != w.subs_.end()) it->second->paused = paused;
    });
  }
  void Close(uint32_t id) {
    Post([id](Watcher& w) { w.Finish(id, nullptr); });
  }
  // A batch was delivered: a subscription held back at the cap may read again.
  void Poke() {
    uint64_t one = 1;
    ssize_t n = write(wake_.get(), &one, sizeof(one));
    (void)n;
  }

 private:
  using Command = std::function<void(Watcher&)>;

  void Post(Command c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      commands_.push_back(std::move(c));
    }
    Poke();
  }

  void Run() {
    pthread_setname_np(pthread_self(), "nk-watch");
    buffer_.resize(kRecvBuffer);
    std::vector<epoll_event> ready(64);
    while (!stopping_) {
      RunCommands();
      if (stopping_) break;
      for (auto it = subs_.begin(); it != subs_.end();) {
        auto s = (it++)->second;  // Resync may end the subscription
        if (s->resyncPending && Eligible(*s)) Resync(s);
      }
      bool again = false;  // a resync that could not finish draining goes on without waiting
      std::vector<std::pair<uint32_t, OpError>> refused;
      for (auto& [id, s] : subs_) {
        OpError e;
        if (!Arm(*s, Eligible(*s) && !s->resyncPending, &e)) refused.emplace_back(id, e);
        again = again || (s->resyncPending && Eligible(*s));
      }
      for (auto& [id, e] : refused) Finish(id, &e);
      int n = epoll_wait(ep_.get(), ready.data(), static_cast<int>(ready.size()), again ? 0 : -1);
      if (n < 0 && errno != EINTR) {
        // Cannot happen with a valid epoll descriptor; if it does, end every stream with the
        // error rather than spin on it.
        OpError e;
        e.Set(errno, "watch", "epoll_wait");
        std::vector<uint32_t> ids;
        for (auto& [id, s] : subs_) ids.push_back(id);
        for (uint32_t id : ids) Finish(id, &e);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // commands still run
        continue;
      }
      for (int i = 0; i < n; i++) {
        uint64_t id = ready[i].data.u64;
        if (id == 0) {
          uint64_t count;
          ssize_t r = read(wake_.get(), &count, sizeof(count));
          (void)r;
          continue;
        }
        auto it = subs_.find(static_cast<uint32_t>(id));
        if (it != subs_.end() && Eligible(*it->second) && !it->second->resyncPending) ReadEvents(it->second);
      }
    }
    for (auto& [id, s] : subs_) {
      Arm(*s, false);
      s->ReleaseJs();  // the environment is going away
    }
    subs_.clear();
  }

  void RunCommands() {
    std::deque<Command> todo;
    {
      std::lock_guard<std::mutex> lock(mu_);
      todo.swap(commands_);
    }
    for (auto& c : todo) c(*this);
  }

  static bool Eligible(const Subscription& s) { return !s.paused && s.inflight.load() < kMaxInflight; }

  // Adds the subscription's socket to epoll (or removes it). False when epoll refused it
  // (ENOMEM, ENOSPC: fs.epoll.max_user_watches).
  bool Arm(Subscription& s, bool want, OpError* err = nullptr) {
    if (want == s.armed) return true;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = s.id;
    if (epoll_ctl(ep_.get(), want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s.events.get(), &ev) != 0 && want) {
      if (err != nullptr) err->Set(errno, "watch", "epoll_ctl");
      return false;
    }
    s.armed = want;
    return true;
  }

  void Deliver(std::unique_ptr<Batch> b) {
    Subscription& s = *b->sub;
    s.inflight++;
    if (s.Call(b.get())) {
      b.release();  // CallJs owns it now
    } else {
      s.inflight--;  // the environment is shutting down
    }
  }

  // Ends a subscription: closes both sockets here and now (the caller's fd count drops as soon as
  // JavaScript sees the closing batch), then tells JavaScript, failed with `error` or closed.
  void Finish(uint32_t id, const OpError* error) {
    auto it = subs_.find(id);
    if (it == subs_.end()) return;
    std::shared_ptr<Subscription> s = it->second;
    subs_.erase(it);
    Arm(*s, false);
    s->events.reset();
    s->dumps.reset();
    auto b = std::make_unique<Batch>();
    b->sub = s;
    if (error != nullptr) b->error = *error;
    b->closed = true;
    Deliver(std::move(b));
    s->ReleaseJs();
  }

  void ReadEvents(const std::shared_ptr<Subscription>& s) {
    auto b = std::make_unique<Batch>();
    b->sub = s;
    while (b->events.size() < kMaxBatch) {
      ssize_t n = recv(s->events.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {
          // The kernel dropped events. What this batch holds predates the loss and is superseded
          // by the resync's dump, so it goes too.
          s->resyncPending = true;
          s->resyncReason = "overflow";
          return;
        }
        OpError e;
        e.Set(errno, "watch", "receive events");
        Finish(s->id, &e);
        return;
      }
      Parse(*s, buffer_.data(), static_cast<size_t>(n), &b->events);
    }
    if (!b->events.empty()) Deliver(std::move(b));
  }

  static void Parse(const Subscription& s, char* data, size_t len, std::vector<Event>* out) {
    for (auto* h = reinterpret_cast<nlmsghdr*>(data); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (!Wanted(s, h)) continue;
      ParseObjects(h, [out](nl_object* o, const nlmsghdr* m) { out->push_back(ToEvent(o, m)); });
    }
  }

  // Filters before parsing: only what the list calls would show.
  static bool Wanted(const Subscription& s, const nlmsghdr* h) {
    switch (h->nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK: {
        // AF_BRIDGE messages describe bridge-port state, not the link itself; a DELLINK of that
        // family only means "left the bridge".
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return false;
        auto* m = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
        return m->ifi_family == AF_UNSPEC;
      }
      case RTM_NEWADDR:
      case RTM_DELADDR:
        // Also for route streams: removing an IPv4 address silently flushes routes using it as
        // source, and lib/ reports that.
        return (s.kinds & (kAddrs | kRoutes)) != 0;
      case RTM_NEWROUTE:
      case RTM_DELROUTE: {
        if (!(s.kinds & kRoutes) || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return false;
        auto* m = static_cast<const rtmsg*>(NLMSG_DATA(h));
        // Cached clones (PMTU exceptions) are not routes of the table: a dump does not show them.
        return (m->rtm_family == AF_INET || m->rtm_family == AF_INET6) && !(m->rtm_flags & RTM_F_CLONED);
      }
      case RTM_NEWNEIGH:
      case RTM_DELNEIGH: {
        // ARP and NDP for neighbour streams; a bridge's forwarding database (AF_BRIDGE) is its
        // own kind (fdb).
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) return false;
        auto* m = static_cast<const ndmsg*>(NLMSG_DATA(h));
        if (m->ndm_family == AF_BRIDGE) return (s.kinds & kFdb) != 0;
        return (s.kinds & kNeighs) && (m->ndm_family == AF_INET || m->ndm_family == AF_INET6);
      }
      default:
        return false;  // RTM_GETNEIGH (application probes), NLMSG_* control messages
    }
  }

  // One decoded object as an event; `h` is the message it came from (its type says new or del).
  static Event ToEvent(nl_object* o, const nlmsghdr* h) {
    Event e;
    switch (h->nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK:
        e.kind = Event::Link;
        e.del = h->nlmsg_type == RTM_DELLINK;
        e.obj = ReadLink(reinterpret_cast<rtnl_link*>(o));
        break;
      case RTM_NEWADDR:
      case RTM_DELADDR:
        e.kind = Event::Addr;
        e.del = h->nlmsg_type == RTM_DELADDR;
        e.obj = ReadAddr(reinterpret_cast<rtnl_addr*>(o));
        break;
      case RTM_NEWROUTE:
      case RTM_DELROUTE:
        e.kind = Event::Route;
        e.del = h->nlmsg_type == RTM_DELROUTE;
        e.obj = ReadRoute(reinterpret_cast<rtnl_route*>(o), h);
        break;
      default:
        if (static_cast<const ndmsg*>(NLMSG_DATA(h))->ndm_family == AF_BRIDGE) {
          e.kind = Event::Fdb;
          e.del = h->nlmsg_type == RTM_DELNEIGH;
          e.obj = DecodeFdb(h);  // libnl 3.7 reads neither NDA_VNI nor NDA_PORT
          break;
        }
        e.kind = Event::Neigh;
        e.del = h->nlmsg_type == RTM_DELNEIGH;
        e.obj = ReadNeigh(reinterpret_cast<rtnl_neigh*>(o));
    }
    return e;
  }

  // Starts (or restarts) a stream from the true state: drop what the socket holds, then dump.
  void Resync(const std::shared_ptr<Subscription>& s) {
    // Everything queued now was sent before the loss (or before the start); replaying it on top of
    // a newer dump could resurrect deleted objects. Events that arrive from here on are kept.
    for (size_t drained = 0;; drained++) {
      if (drained == kMaxDrain) return;  // still flooding: serve the others, drain again next turn
      ssize_t n = recv(s->events.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n >= 0 || errno == EINTR || errno == ENOBUFS) continue;
      break;
    }
    auto snap = std::make_unique<Snapshot>();
    snap->reason = s->resyncReason;
    OpError err;
    if (!DumpAll(*s, snap.get(), &err)) {
      Finish(s->id, &err);
      return;
    }
    s->resyncPending = false;
    auto b = std::make_unique<Batch>();
    b->sub = s;
    b->resync = std::move(snap);
    Deliver(std::move(b));
  }

  // One RTM_GET* dump on the subscription's dump socket, filtered and parsed like events.
  static bool DumpKind(Subscription& s, int type, const char* what, std::vector<Event>* out, OpError* err, int family = AF_UNSPEC) {
    return DumpWithRetry("watch", err, [out] { out->clear(); }, [&] {
      // The FDB dump wants a whole ndmsg as its header (a bare rtgenmsg is refused with EINVAL,
      // reported only inside NLMSG_DONE, which libnl ignores).
      int rc = family == AF_BRIDGE ? DumpFdb(s, out) : DumpObjects(s.dumps.get(), type, family, [&](nl_object* o, const nlmsghdr* h) {
        if (Wanted(s, h)) out->push_back(ToEvent(o, h));
      });
      if (rc == -NLE_DUMP_INTR) return DumpResult::kInterrupted;  // the table changed during the dump
      if (rc < 0) {
        err->Set(rc == -NLE_AGAIN ? ETIMEDOUT : EIO, "watch", std::string(what) + ": " + nl_geterror(rc));
        return DumpResult::kFailed;
      }
      return DumpResult::kDone;
    });
  }

  static int DumpFdb(Subscription& s, std::vector<Event>* out) {
    ndmsg hdr{};
    hdr.ndm_family = AF_BRIDGE;
    return RawDumpSock(s.dumps.get(), RTM_GETNEIGH, &hdr, sizeof(hdr), [&](nl_msg* msg) {
      const nlmsghdr* h = nlmsg_hdr(msg);
      if (h->nlmsg_type != RTM_NEWNEIGH || !Wanted(s, h)) return;
      Event e;
      e.kind = Event::Fdb;
      e.obj = DecodeFdb(h);
      out->push_back(std::move(e));
    });
  }

  static bool DumpAll(Subscription& s, Snapshot* snap, OpError* err) {
    std::vector<Event> objects;
    if (!DumpKind(s, RTM_GETLINK, "dump links", &objects, err)) return false;
    for (auto& e : objects) snap->links.push_back(std::move(std::get<LinkInfo>(e.obj)));
    if ((s.kinds & (kAddrs | kRoutes)) && !DumpKind(s, RTM_GETADDR, "dump addresses", &objects, err)) return false;
    if (s.kinds & (kAddrs | kRoutes))
      for (auto& e : objects) snap->addrs.push_back(std::move(std::get<AddrInfo>(e.obj)));
    if ((s.kinds & kRoutes) && !DumpKind(s, RTM_GETROUTE, "dump routes", &objects, err)) return false;
    if (s.kinds & kRoutes)
      for (auto& e : objects) snap->routes.push_back(std::move(std::get<RouteInfo>(e.obj)));
    if ((s.kinds & kNeighs) && !DumpKind(s, RTM_GETNEIGH, "dump neighbors", &objects, err)) return false;
    if (s.kinds & kNeighs)
      for (auto& e : objects) snap->neighs.push_back(std::move(std::get<NeighInfo>(e.obj)));
    // The FDB answers only a dump of family AF_BRIDGE.
    if ((s.kinds & kFdb) && !DumpKind(s, RTM_GETNEIGH, "dump fdb", &objects, err, AF_BRIDGE)) return false;
    if (s.kinds & kFdb)
      for (auto& e : objects) snap->fdb.push_back(std::move(std::get<FdbInfo>(e.obj)));
    return true;
  }

  Fd ep_, wake_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<Command> commands_;
  bool stopping_ = false;  // nk-watch thread only
  uint32_t nextId_ = 1;
  std::map<uint32_t, std::shared_ptr<Subscription>> subs_;  // nk-watch thread only
  std::vector<char> buffer_;
};

constexpr const char* kWatcherKey = "watch";

// The environment's watch thread, started by its first watch; nullptr (and `err`) when it cannot
// be set up.
Watcher* WatcherOf(Napi::Env env, OpError* err) {
  if (auto* w = static_cast<Watcher*>(GetEnvResource(env, kWatcherKey))) return w;
  auto w = std::make_unique<Watcher>(err);
  if (err->failed()) return nullptr;
  return static_cast<Watcher*>(SetEnvResource(env, kWatcherKey, std::move(w)));
}

template <typename T>
Napi::Array ToArray(Napi::Env env, const std::vector<T>& v, Napi::Object (*conv)(Napi::Env, const T&)) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(i, conv(env, v[i]));
  return a;
}

Napi::Object EventToJs(Napi::Env env, const Event& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("del", e.del);
  switch (e.kind) {
    case Event::Link:
      o.Set("kind", "link");
      o.Set("link", LinkToJs(env, std::get<LinkInfo>(e.obj)));
      break;
    case Event::Addr:
      o.Set("kind", "addr");
      o.Set("addr", AddrToJs(env, std::get<AddrInfo>(e.obj)));
      break;
    case Event::Route:
      o.Set("kind", "route");
      o.Set("route", RouteToJs(env, std::get<RouteInfo>(e.obj)));
      break;
    case Event::Neigh:
      o.Set("kind", "neigh");
      o.Set("neigh", NeighToJs(env, std::get<NeighInfo>(e.obj)));
      break;
    case Event::Fdb:
      o.Set("kind", "fdb");
      o.Set("fdb", FdbToJs(env, std::get<FdbInfo>(e.obj)));
      break;
  }
  return o;
}

void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Batch* raw) {
  std::unique_ptr<Batch> b(raw);
  if (b == nullptr) return;
  if (env == nullptr) return;  // the environment is being torn down: just free the batch
  // Credit back first: even if JavaScript throws below, the subscription must not stall.
  if (b->sub->inflight.fetch_sub(1) == kMaxInflight && b->sub->env->alive) b->sub->watcher->Poke();
  try {
    DeliverJs(env, fn, *b);
  } catch (const Napi::Error& e) {
    // The callback threw: it surfaces as an uncaught exception, as for any callback. Unless N-API
    // refuses because a Worker is being terminated: then nobody is left to deliver to.
    try {
      e.ThrowAsJavaScriptException();
    } catch (const Napi::Error&) {
    }
  }
}

void DeliverJs(Napi::Env env, Napi::Function fn, const Batch& batch) {
  const Batch* b = &batch;
  Napi::HandleScope scope(env);
  Napi::Object o = Napi::Object::New(env);
  if (b->resync) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("reason", b->resync->reason);
    r.Set("links", ToArray(env, b->resync->links, LinkToJs));
    r.Set("addrs", ToArray(env, b->resync->addrs, AddrToJs));
    r.Set("routes", ToArray(env, b->resync->routes, RouteToJs));
    r.Set("neighs", ToArray(env, b->resync->neighs, NeighToJs));
    r.Set("fdb", ToArray(env, b->resync->fdb, FdbToJs));
    o.Set("resync", r);
  }
  Napi::Array events = Napi::Array::New(env, b->events.size());
  for (size_t i = 0; i < b->events.size(); i++) events.Set(i, EventToJs(env, b->events[i]));
  o.Set("events", events);
  if (b->error.failed()) o.Set("error", ErrorToJs(env, b->error));
  if (b->closed) o.Set("closed", true);
  fn.Call({o});
}

// ---- Opening: on a worker thread, inside the namespace ----------------------------------------

class OpenJob : public Job {
 public:
  explicit OpenJob(std::shared_ptr<Subscription> s) : s_(std::move(s)) {}
  ~OpenJob() override {
    if (!registered_) s_->ReleaseJs();  // failed: the stream never starts
  }

  void Execute() override {
    Subscription& s = *s_;
    {
      // Both sockets belong to the namespace of the thread that creates them.
      NsGuard guard(s.ns, &error);
      if (!guard.ok()) return;
      s.events = Fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
      if (!s.events.valid()) {
        error.Set(errno, "watch", "open netlink socket in " + NsPath(s.ns));
        return;
      }
      s.dumps = NlSock(nl_socket_alloc());
      if (!s.dumps) {
        error.Set(ENOMEM, "watch", "open netlink socket");
        return;
      }
      if (nl_connect(s.dumps.get(), NETLINK_ROUTE) < 0) {
        error.Set(errno ? errno : EIO, "watch", "open netlink socket in " + NsPath(s.ns));
        return;
      }
    }
    int fd = s.events.get();
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      error.Set(errno, "watch", "bind netlink socket");
      return;
    }
    // Sized for bursts. SO_RCVBUFFORCE passes net.core.rmem_max (needs CAP_NET_ADMIN).
    int size = s.receiveBuffer;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    std::vector<unsigned> groups = {RTNLGRP_LINK};
    if (s.kinds & (kAddrs | kRoutes)) groups.insert(groups.end(), {RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR});
    if (s.kinds & kRoutes) groups.insert(groups.end(), {RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE});
    if (s.kinds & (kNeighs | kFdb)) groups.push_back(RTNLGRP_NEIGH);
    for (unsigned g : groups) {
      if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) != 0) {
        error.Set(errno, "watch", "join rtnetlink group " + std::to_string(g));
        return;
      }
    }
    int dfd = nl_socket_get_fd(s.dumps.get());
    fcntl(dfd, F_SETFD, FD_CLOEXEC);
    timeval tv{kDumpTimeoutSec, 0};
    setsockopt(dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  Napi::Value Result(Napi::Env env) override {
    s_->watcher->Add(s_);
    registered_ = true;
    return Napi::Number::New(env, s_->id);
  }

 private:
  std::shared_ptr<Subscription> s_;
  bool registered_ = false;
};

// watchOpen(ns, { kinds, receiveBuffer }, onBatch): Promise<id>
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpError err;
  Watcher* watcher = WatcherOf(env, &err);
  if (watcher == nullptr) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(ErrorToJs(env, err));
    return d.Promise();
  }
  auto s = std::make_shared<Subscription>();
  s->env = LinkOf(env);
  s->watcher = watcher;
  s->id = watcher->NextId();
  s->ns = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  s->kinds = o.Get("kinds").As<Napi::Number>().Uint32Value();
  s->receiveBuffer = o.Get("receiveBuffer").As<Napi::Number>().Int32Value();
  // Unlimited queue: the in-flight cap bounds it, and the thread must never block on it.
  s->tsfn = Tsfn::New(env, info[2].As<Napi::Function>(), "netns-kit-watch", 0, 1);
  return Submit(env, std::make_unique<OpenJob>(s));
}

Napi::Value Pause(const Napi::CallbackInfo& info) {
  if (auto* watcher = static_cast<Watcher*>(GetEnvResource(info.Env(), kWatcherKey))) watcher->Pause(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  if (auto* watcher = static_cast<Watcher*>(GetEnvResource(info.Env(), kWatcherKey))) watcher->Close(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

}  // namespace

void InitWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("watchOpen", Napi::Function::New(env, Open));
  exports.Set("watchPause", Napi::Function::New(env, Pause));
  exports.Set("watchClose", Napi::Function::New(env, Close));
  // The watch thread is stopped by the environment's cleanup (it is an EnvResource).
}

}  // namespace nk
