// The bulk fast path: many alike namespaces at close to the kernel's own price, and their teardown
// awaited until the kernel has really finished. lib/bulk.ts validates, splits the work into chunks,
// runs up to kWorkerThreads chunks at once, reports progress and rolls back; this file only talks to
// the kernel.
//
// Per chunk of K namespaces (one worker thread):
//   A. for each namespace: open /run/netns/NAME (O_EXCL), unshare(CLONE_NEWNET), write its sysctls
//      (IPv6 off) while inside, open a raw rtnetlink socket there (it stays bound to the namespace),
//      bind-mount it; the next unshare starts from inside the previous one (net namespaces are not
//      nested), so the thread switches home once per chunk, not once per namespace.
//   B. in the host namespace: K RTM_NEWLINK veth messages in one sendmsg, each with its peer created
//      directly in its namespace (IFLA_NET_NS_FD, its ifindex chosen) and the host end's master,
//      IFF_UP and interface group in the creating message. Only the last message asks for an ack:
//      rtnetlink handles every message of a sendmsg synchronously and reports each failure on its
//      own, so one recvmsg answers for the whole batch when all went well.
//   C. in each namespace, through its own socket: lo up, eth0 up, addresses, routes in one sendmsg
//      (the peer's ifindex is known, so no lookups), then the socket is closed: nothing per
//      namespace stays open after set-up.
//
// Teardown (lib/bulk.ts deleteMany): one RTM_DELLINK by interface group in the host namespace
// (`ip link del group N`, synchronous: it returns after the devices are unregistered and freed),
// then the bind mounts are released, and a watch waits for the kernel's netns cleanup (see Watch).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "addon.h"
#include "js_value.h"
#include "netns.h"
#include "nl_object.h"
#include "nl_socket.h"
#include "sysctl_file.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace nk {

namespace {

// ---------------------------------------------------------------------------------------------
// A raw rtnetlink socket and a batch of messages sent in as few sendmsg calls as possible.

// Opens an rtnetlink socket in the calling thread's namespace.
Fd OpenRtnl(OpError* err, const std::string& where) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) {
    err->Set(errno, "open netlink socket", where);
    return fd;
  }
  int one = 1;
  setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  // Acks without a copy of the request: less to copy and to read back.
  setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    err->Set(errno, "open netlink socket", where);
    fd.reset();
  }
  return fd;
}

// The kernel's extended-ack text in an NLMSG_ERROR, if any.
std::string Extack(const nlmsghdr* nlh) {
  auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
  off = NLMSG_ALIGN(off);
  while (off + sizeof(nlattr) <= nlh->nlmsg_len) {
    auto* a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(nlh) + off);
    if (a->nla_len < sizeof(nlattr) || off + a->nla_len > nlh->nlmsg_len) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* text = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
      return std::string(text, strnlen(text, a->nla_len - NLA_HDRLEN));
    }
    off += NLA_ALIGN(a->nla_len);
  }
  return "";
}

std::atomic<uint32_t> next_seq{1};

// Taken by the phases of concurrent chunks that need the kernel's RTNL (see the sysctl writes).
std::mutex rtnl_turn;

// NK_BULK_TRACE=1 prints where a chunk's time goes (stderr), for the benchmark's investigations.
class Trace {
 public:
  explicit Trace(const char* what) : what_(what), on_(getenv("NK_BULK_TRACE") != nullptr), t0_(Now()), last_(t0_) {}
  void Mark(const char* phase) {
    if (!on_) return;
    double t = Now();
    line_ += std::string(" ") + phase + "=" + std::to_string(static_cast<int>((t - last_) * 1000)) + "us";
    last_ = t;
  }
  ~Trace() {
    if (on_) fprintf(stderr, "nk-bulk %s total=%dus%s\n", what_, static_cast<int>((Now() - t0_) * 1000), line_.c_str());
  }

 private:
  static double Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }
  const char* what_;
  bool on_;
  double t0_, last_;
  std::string line_;
};

class Batch {
 public:
  // Takes `msg` (built by a libnl rtnl_*_build_*_request) and frees it. `what` names the object
  // for an error message; `owner` is the caller's index of the item the message belongs to.
  void Add(nl_msg* msg, const char* op, std::string what, int owner) {
    nlmsghdr* h = nlmsg_hdr(msg);
    size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(h->nlmsg_len));
    memcpy(buf_.data() + at, h, h->nlmsg_len);
    nlmsg_free(msg);
    msgs_.push_back(Entry{at, op, std::move(what), owner});
  }
  bool empty() const { return msgs_.empty(); }
  size_t size() const { return msgs_.size(); }

  // Sends everything on `fd` and reads the answers. On the first failure fills `err` (errno,
  // extack, op, what) and `*failedOwner`; later messages are still processed by the kernel and
  // their failures are ignored (the caller rolls back the whole item anyway).
  bool Run(int fd, OpError* err, int* failedOwner) {
    const size_t kChunk = 48 * 1024;  // well under the default socket send buffer
    size_t i = 0;
    bool ok = true;
    while (i < msgs_.size()) {
      size_t start = msgs_[i].offset, j = i;
      while (j < msgs_.size() && (j == i || End(j) - start <= kChunk)) j++;
      uint32_t base = next_seq.fetch_add(static_cast<uint32_t>(j - i));
      for (size_t k = i; k < j; k++) {
        auto* h = reinterpret_cast<nlmsghdr*>(buf_.data() + msgs_[k].offset);
        h->nlmsg_seq = base + static_cast<uint32_t>(k - i);
        h->nlmsg_pid = 0;
        h->nlmsg_flags |= NLM_F_REQUEST;
        if (k + 1 == j) h->nlmsg_flags |= NLM_F_ACK;
        else h->nlmsg_flags &= ~NLM_F_ACK;
      }
      if (!SendAll(fd, start, End(j - 1), err)) {
        *failedOwner = msgs_[i].owner;
        return false;
      }
      if (!ReadAcks(fd, base, i, j, err, failedOwner)) ok = false;
      i = j;
    }
    return ok;
  }

 private:
  struct Entry {
    size_t offset;
    const char* op;
    std::string what;
    int owner;
  };
  size_t End(size_t k) const {
    auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data() + msgs_[k].offset);
    return msgs_[k].offset + NLMSG_ALIGN(h->nlmsg_len);
  }

  bool SendAll(int fd, size_t from, size_t to, OpError* err) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    iovec iov{buf_.data() + from, to - from};
    msghdr mh{};
    mh.msg_name = &kernel;
    mh.msg_namelen = sizeof(kernel);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    for (;;) {
      ssize_t n = sendmsg(fd, &mh, 0);
      if (n >= 0) return true;
      if (errno == EINTR) continue;
      err->Set(errno, "netlink sendmsg");
      return false;
    }
  }

  bool ReadAcks(int fd, uint32_t base, size_t first, size_t end, OpError* err, int* failedOwner) {
    uint32_t last = base + static_cast<uint32_t>(end - first - 1);
    bool ok = true;
    alignas(nlmsghdr) char rb[16384];
    for (;;) {
      ssize_t n = recv(fd, rb, sizeof(rb), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        err->Set(errno, "netlink recv");
        *failedOwner = msgs_[first].owner;
        return false;
      }
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        uint32_t seq = h->nlmsg_seq;
        if (seq < base || seq > last) continue;  // an answer to someone else's request
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        if (e->error != 0 && ok) {
          const Entry& m = msgs_[first + (seq - base)];
          OpError local;
          local.Set(-e->error, m.op, m.what);
          local.extack = Extack(h);
          *err = local;
          *failedOwner = m.owner;
          ok = false;
        }
        if (seq == last) return ok;
      }
    }
  }

  std::vector<char> buf_;
  std::vector<Entry> msgs_;
};

// ifindex of `name` in the socket's namespace (RTM_GETLINK by name).
bool LinkIndex(int fd, const std::string& name, int* index, OpError* err) {
  NlPtr<rtnl_link> l(rtnl_link_alloc());
  nl_msg* msg = nullptr;
  if (rtnl_link_build_get_request(0, name.c_str(), &msg) < 0) {
    err->Set(ENOMEM, "get link", name);
    return false;
  }
  nlmsghdr* h = nlmsg_hdr(msg);
  h->nlmsg_flags |= NLM_F_REQUEST;
  h->nlmsg_seq = next_seq.fetch_add(1);
  uint32_t seq = h->nlmsg_seq;
  ssize_t sent = send(fd, h, h->nlmsg_len, 0);
  nlmsg_free(msg);
  if (sent < 0) {
    err->Set(errno, "get link", name);
    return false;
  }
  alignas(nlmsghdr) char rb[32768];
  for (;;) {
    ssize_t n = recv(fd, rb, sizeof(rb), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err->Set(errno, "get link", name);
      return false;
    }
    int len = static_cast<int>(n);
    for (auto* r = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq) continue;
      if (r->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(r));
        int code = -e->error;
        err->Set(code == ENODEV ? ENOENT : (code ? code : EIO), "get link", "no such link " + name);
        err->extack = Extack(r);
        return false;
      }
      if (r->nlmsg_type == RTM_NEWLINK) {
        *index = static_cast<ifinfomsg*>(NLMSG_DATA(r))->ifi_index;
        return true;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Creation.

struct AddrSpec {
  int family = AF_INET, prefixlen = 0;
  bool noDad = false;
  std::string address;
};

struct RouteSpec {
  int family = AF_INET, dstLen = 0, dev = 0;
  std::string dst, gateway, src;
  std::optional<int64_t> metric, table, scope, protocol, type;
};

struct Item {
  std::string path, name;
  bool hasVeth = false;
  std::string veth, peer, bridge;
  int peerIndex = 2;
  std::optional<int64_t> hostIndex;
  uint32_t group = 0;
  std::optional<int64_t> mtu;
  bool loUp = true;
  std::vector<AddrSpec> addrs;
  std::vector<RouteSpec> routes;
  std::vector<std::pair<std::string, std::string>> sysctls;
};

Item ReadItem(const Napi::Object& o) {
  Item it;
  it.path = String(o, "path");
  it.name = String(o, "name");
  it.loUp = OptBool(o, "loopbackUp").value_or(true);
  if (auto v = OptObject(o, "veth")) {
    it.hasVeth = true;
    it.veth = String(*v, "name");
    it.peer = String(*v, "peerName");
    it.bridge = String(*v, "bridge");
    it.peerIndex = static_cast<int>(OptInt(*v, "index").value_or(2));
    it.hostIndex = OptInt(*v, "hostIndex");
    it.group = static_cast<uint32_t>(OptInt(*v, "group").value_or(0));
    it.mtu = OptInt(*v, "mtu");
  }
  if (o.Get("addresses").IsArray()) {
    Napi::Array a = o.Get("addresses").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Object x = a.Get(i).As<Napi::Object>();
      AddrSpec s;
      s.family = static_cast<int>(OptInt(x, "family").value_or(AF_INET));
      s.prefixlen = static_cast<int>(OptInt(x, "prefixlen").value_or(0));
      s.address = String(x, "address");
      s.noDad = OptBool(x, "noDad").value_or(false);
      it.addrs.push_back(s);
    }
  }
  if (o.Get("routes").IsArray()) {
    Napi::Array a = o.Get("routes").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Object x = a.Get(i).As<Napi::Object>();
      RouteSpec r;
      r.family = static_cast<int>(OptInt(x, "family").value_or(AF_INET));
      r.dst = String(x, "dst");
      r.dstLen = static_cast<int>(OptInt(x, "dstLen").value_or(0));
      r.gateway = String(x, "gateway");
      r.src = String(x, "src");
      r.dev = static_cast<int>(OptInt(x, "devIndex").value_or(0));
      r.metric = OptInt(x, "metric");
      r.table = OptInt(x, "table");
      r.scope = OptInt(x, "scope");
      r.protocol = OptInt(x, "protocol");
      r.type = OptInt(x, "type");
      it.routes.push_back(r);
    }
  }
  if (o.Get("sysctls").IsArray()) {
    Napi::Array a = o.Get("sysctls").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Array kv = a.Get(i).As<Napi::Array>();
      it.sysctls.emplace_back(kv.Get(0u).As<Napi::String>(), kv.Get(1u).As<Napi::String>());
    }
  }
  return it;
}

nl_msg* SetUpMsg(int index) {
  NlPtr<rtnl_link> l(rtnl_link_alloc());
  rtnl_link_set_ifindex(l.get(), index);
  rtnl_link_set_flags(l.get(), IFF_UP);
  nl_msg* msg = nullptr;
  // RTM_NEWLINK without NLM_F_CREATE on an ifindex changes that link (`ip link set dev X up`).
  if (rtnl_link_build_add_request(l.get(), 0, &msg) < 0) return nullptr;
  return msg;
}

nl_msg* AddrMsg(int index, const AddrSpec& s) {
  NlPtr<rtnl_addr> a(rtnl_addr_alloc());
  NlAddr local = ParseAddr(s.address, s.family);
  if (!local) return nullptr;
  nl_addr_set_prefixlen(local.get(), s.prefixlen);
  rtnl_addr_set_ifindex(a.get(), index);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), s.prefixlen);
  if (s.noDad) rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
  nl_msg* msg = nullptr;
  if (rtnl_addr_build_add_request(a.get(), NLM_F_CREATE | NLM_F_EXCL, &msg) < 0) return nullptr;
  return msg;
}

nl_msg* RouteMsg(const RouteSpec& r) {
  NlPtr<rtnl_route> route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.family));
  NlAddr dst = ParseAddr(r.dst, r.family);
  if (!dst) return nullptr;
  nl_addr_set_prefixlen(dst.get(), r.dstLen);
  rtnl_route_set_dst(route.get(), dst.get());
  if (r.table) rtnl_route_set_table(route.get(), static_cast<uint32_t>(*r.table));
  if (r.metric) rtnl_route_set_priority(route.get(), static_cast<uint32_t>(*r.metric));
  if (r.scope) rtnl_route_set_scope(route.get(), static_cast<uint8_t>(*r.scope));
  if (r.protocol) rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(*r.protocol));
  if (r.type) rtnl_route_set_type(route.get(), static_cast<uint8_t>(*r.type));
  if (!r.src.empty()) {
    NlAddr src = ParseAddr(r.src, r.family);
    if (!src) return nullptr;
    rtnl_route_set_pref_src(route.get(), src.get());
  }
  if (!r.gateway.empty() || r.dev != 0) {
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (r.dev != 0) rtnl_route_nh_set_ifindex(nh, r.dev);
    if (!r.gateway.empty()) {
      NlAddr gw = ParseAddr(r.gateway, r.family);
      if (!gw) {
        rtnl_route_nh_free(nh);
        return nullptr;
      }
      rtnl_route_nh_set_gateway(nh, gw.get());
    }
    rtnl_route_add_nexthop(route.get(), nh);
  }
  nl_msg* msg = nullptr;
  if (rtnl_route_build_add_request(route.get(), NLM_F_CREATE | NLM_F_EXCL, &msg) < 0) return nullptr;
  return msg;
}

class CreateChunkJob : public Job {
 public:
  CreateChunkJob(std::string runDir, std::string hostPath, std::vector<Item> items)
      : runDir_(std::move(runDir)), hostPath_(std::move(hostPath)), items_(std::move(items)) {}

  void Execute() override {
    Trace trace("chunk");
    OpError& err = failure_;
    if (!EnsureSharedRunDir(runDir_, &err)) return;
    const size_t n = items_.size();
    std::vector<Fd> socks(n), nsfds(n);

    // A. Namespaces, each with its socket and a handle for IFLA_NET_NS_FD.
    bool away = false;
    for (size_t i = 0; i < n && !err.failed(); i++) {
      Item& it = items_[i];
      Fd file(open(it.path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
      if (!file.valid()) {
        err.Set(errno, "create netns", it.path);
        failedAt_ = static_cast<int>(i);
        break;
      }
      file.reset();
      // disable_ipv6 and friends take the RTNL with a trylock and restart the syscall while it is
      // busy: written while another of our chunks holds the RTNL (its veths, its in-namespace
      // messages, or an unshare, whose pernet set-up takes the RTNL too), they spin and steal the CPU
      // the lock holder needs. So these writes, with the unshare before them, take turns with our
      // RTNL-heavy phases; without sysctls, unshares of concurrent chunks still run in parallel.
      std::unique_lock<std::mutex> turn(rtnl_turn, std::defer_lock);
      if (!it.sysctls.empty()) turn.lock();
      if (unshare(CLONE_NEWNET) != 0) {
        err.Set(errno, "create netns", "unshare " + it.path);
        unlink(it.path.c_str());
        failedAt_ = static_cast<int>(i);
        break;
      }
      away = true;
      for (auto& kv : it.sysctls) {
        if (!WriteSysctl(kv.first, kv.second, &err)) break;
      }
      if (turn.owns_lock()) turn.unlock();
      if (!err.failed()) socks[i] = OpenRtnl(&err, it.path);
      if (!err.failed()) {
        nsfds[i] = Fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
        if (!nsfds[i].valid()) err.Set(errno, "create netns", "open /proc/thread-self/ns/net");
      }
      if (!err.failed() && mount("/proc/thread-self/ns/net", it.path.c_str(), "none", MS_BIND, nullptr) != 0) {
        err.Set(errno, "create netns", "bind mount " + it.path);
      }
      if (err.failed()) {
        // Not mounted: the namespace dies with our last handle on it.
        socks[i].reset();
        nsfds[i].reset();
        unlink(it.path.c_str());
        failedAt_ = static_cast<int>(i);
        break;
      }
      created_.push_back(it.path);
    }
    if (away) ReturnHome();
    if (err.failed()) return;
    trace.Mark("namespaces");

    // B. Veths, from the host namespace, in one batch.
    Batch veths;
    bool anyVeth = false;
    for (auto& it : items_) anyVeth = anyVeth || it.hasVeth;
    if (anyVeth) {
      Fd host;
      {
        NsGuard guard(hostPath_, &err);
        if (!guard.ok()) return;
        host = OpenRtnl(&err, hostPath_);
      }
      if (!host.valid()) return;
      std::map<std::string, int> bridges;
      for (size_t i = 0; i < n; i++) {
        Item& it = items_[i];
        if (!it.hasVeth) continue;
        int master = 0;
        if (!it.bridge.empty()) {
          auto b = bridges.find(it.bridge);
          if (b == bridges.end()) {
            if (!LinkIndex(host.get(), it.bridge, &master, &err)) {
              err.detail = "bridge " + it.bridge + " in the host namespace: " + err.detail;
              failedAt_ = static_cast<int>(i);
              return;
            }
            bridges[it.bridge] = master;
          } else {
            master = b->second;
          }
        }
        NlPtr<rtnl_link> link(rtnl_link_veth_alloc());
        rtnl_link_set_name(link.get(), it.veth.c_str());
        if (master) rtnl_link_set_master(link.get(), master);
        if (it.group) rtnl_link_set_group(link.get(), it.group);
        if (it.hostIndex) rtnl_link_set_ifindex(link.get(), static_cast<int>(*it.hostIndex));
        if (it.mtu) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(*it.mtu));
        rtnl_link_set_flags(link.get(), IFF_UP);
        rtnl_link* peer = rtnl_link_veth_get_peer(link.get());
        NlPtr<rtnl_link> peerHold(peer);
        rtnl_link_set_name(peer, it.peer.c_str());
        rtnl_link_set_ifindex(peer, it.peerIndex);
        if (it.mtu) rtnl_link_set_mtu(peer, static_cast<unsigned>(*it.mtu));
        // Not IFF_UP on the peer here: kernel 6.18 refuses it (ENOTCONN); phase C brings it up.
        rtnl_link_set_ns_fd(peer, nsfds[i].get());
        nl_msg* msg = nullptr;
        if (rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &msg) < 0) {
          err.Set(ENOMEM, "add link", it.veth);
          return;
        }
        veths.Add(msg, "add link", it.veth + " (peer " + it.peer + " in netns " + it.name + ")", static_cast<int>(i));
      }
      int failed = -1;
      std::lock_guard<std::mutex> turn(rtnl_turn);
      if (!veths.Run(host.get(), &err, &failed)) {
        failedAt_ = failed;
        return;
      }
    }
    for (auto& f : nsfds) f.reset();
    trace.Mark("veths");

    // C. Inside each namespace: lo up, eth0 up, addresses, routes; one sendmsg each.
    for (size_t i = 0; i < n; i++) {
      Item& it = items_[i];
      Batch b;
      std::string in = " in netns " + it.name;
      if (it.loUp) b.Add(SetUpMsg(1), "set link up", "lo" + in, static_cast<int>(i));
      if (it.hasVeth) b.Add(SetUpMsg(it.peerIndex), "set link up", it.peer + in, static_cast<int>(i));
      for (auto& a : it.addrs) {
        nl_msg* m = AddrMsg(it.hasVeth ? it.peerIndex : 1, a);
        if (m == nullptr) {
          err.Set(EINVAL, "add address", a.address + in);
          failedAt_ = static_cast<int>(i);
          return;
        }
        b.Add(m, "add address", a.address + "/" + std::to_string(a.prefixlen) + in, static_cast<int>(i));
      }
      for (auto& r : it.routes) {
        nl_msg* m = RouteMsg(r);
        if (m == nullptr) {
          err.Set(EINVAL, "add route", r.dst + in);
          failedAt_ = static_cast<int>(i);
          return;
        }
        std::string what = (r.dstLen == 0 ? std::string("default") : r.dst + "/" + std::to_string(r.dstLen));
        if (!r.gateway.empty()) what += " via " + r.gateway;
        b.Add(m, "add route", what + in, static_cast<int>(i));
      }
      int failed = -1;
      std::lock_guard<std::mutex> turn(rtnl_turn);
      if (!b.empty() && !b.Run(socks[i].get(), &err, &failed)) {
        failedAt_ = static_cast<int>(i);
        return;
      }
      socks[i].reset();
    }
    trace.Mark("inside");
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array created = Napi::Array::New(env, created_.size());
    for (size_t i = 0; i < created_.size(); i++) created.Set(i, created_[i]);
    o.Set("created", created);
    if (failure_.failed()) {
      Napi::Object e = ErrorToJs(env, failure_);
      if (failedAt_ >= 0 && static_cast<size_t>(failedAt_) < items_.size()) e.Set("netns", items_[failedAt_].name);
      o.Set("error", e);
    }
    return o;
  }

 private:
  std::string runDir_, hostPath_;
  std::vector<Item> items_;
  std::vector<std::string> created_;
  OpError failure_;  // reported in the result, not as a rejection: the caller needs `created_` too
  int failedAt_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Teardown.

// `ip link del group N` in the host namespace. The kernel unregisters the whole group in one
// batch and returns only after the devices are gone (netdev_run_todo waits for their references).
class DeleteGroupJob : public Job {
 public:
  DeleteGroupJob(std::string hostPath, uint32_t group) : hostPath_(std::move(hostPath)), group_(group) {}
  void Execute() override {
    Fd host;
    {
      NsGuard guard(hostPath_, &error);
      if (!guard.ok()) return;
      host = OpenRtnl(&error, hostPath_);
    }
    if (!host.valid()) return;
    nl_msg* msg = nlmsg_alloc_simple(RTM_DELLINK, 0);
    if (msg == nullptr) {
      error.Set(ENOMEM, "delete link group");
      return;
    }
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
    nla_put_u32(msg, IFLA_GROUP, group_);
    Batch b;
    b.Add(msg, "delete link group", std::to_string(group_), 0);
    int failed;
    OpError local;
    if (!b.Run(host.get(), &local, &failed) && local.err != ENODEV) error = local;  // ENODEV: group empty
  }

 private:
  std::string hostPath_;
  uint32_t group_;
};

// Releases named namespaces: drops our cached socket (it would keep the namespace alive), unmounts
// and unlinks, like `ip netns delete`. Missing entries are skipped (deleteMany checked them).
class ReleaseJob : public Job {
 public:
  explicit ReleaseJob(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  void Execute() override {
    for (auto& p : paths_) {
      ReleaseSockets(p);
      if (umount2(p.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
        error.Set(errno, "delete netns", "umount " + p);
        continue;
      }
      if (unlink(p.c_str()) != 0 && errno != ENOENT) error.Set(errno, "delete netns", p);
    }
  }

 private:
  std::vector<std::string> paths_;
};

// Watching namespaces until the kernel has finished with them.
//
// A network namespace that lost its last reference is queued for cleanup_net(), a single work item
// on the ordered "netns" workqueue. cleanup_net() first unhashes the dying namespaces' ids from every
// other namespace (sending RTM_DELNSID there), then runs every pernet exit (devices unregistered,
// routes, sockets, conntrack...), rcu_barrier(), and frees them. So:
//   1. a private observer namespace (created here, not the machine's: nsids are state) gives each
//      watched namespace an id (RTM_NEWNSID with NETNSA_FD) and listens on RTNLGRP_NSID;
//   2. after the release, every watched id must have gone (RTM_DELNSID; checked against a
//      RTM_GETNSID dump, so a lost notification cannot hang us): their cleanup_net() has *started*;
//   3. then a sentinel namespace is given an id and dropped; its RTM_DELNSID comes from a later run
//      of the same work item, which cannot start before the run that handled ours has returned, i.e.
//      after our namespaces were completely torn down and freed.
// The observer and the sentinel are empty namespaces; their own (cheap) cleanup is not awaited.
struct Watch {
  Fd notify, ctl;  // both opened inside the observer: the only references that keep it alive
  std::map<int32_t, std::string> pending;  // nsid -> path
  int32_t nextId = 0;
};

std::mutex watch_mu;
std::map<uint32_t, std::unique_ptr<Watch>> watches;
uint32_t next_watch = 1;

bool AssignIds(Watch& w, std::vector<std::pair<Fd, std::string>>& fds, OpError* err) {
  Batch b;
  std::vector<int32_t> ids;
  for (auto& f : fds) {
    nl_msg* msg = nlmsg_alloc_simple(RTM_NEWNSID, NLM_F_CREATE | NLM_F_EXCL);
    if (msg == nullptr) {
      err->Set(ENOMEM, "watch netns");
      return false;
    }
    rtgenmsg g{AF_UNSPEC};
    nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO);
    int32_t id = w.nextId++;
    nla_put_u32(msg, NETNSA_FD, static_cast<uint32_t>(f.first.get()));
    nla_put_s32(msg, NETNSA_NSID, id);
    ids.push_back(id);
    b.Add(msg, "watch netns", f.second, static_cast<int>(ids.size() - 1));
  }
  int failed = -1;
  if (!b.empty() && !b.Run(w.ctl.get(), err, &failed)) return false;
  for (size_t i = 0; i < fds.size(); i++) w.pending[ids[i]] = fds[i].second;
  fds.clear();
  return true;
}

// Ids present in the observer (RTM_GETNSID dump).
bool DumpIds(int fd, std::set<int32_t>* out, OpError* err) {
  struct {
    nlmsghdr h;
    rtgenmsg g;
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtgenmsg));
  req.h.nlmsg_type = RTM_GETNSID;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = next_seq.fetch_add(1);
  req.g.rtgen_family = AF_UNSPEC;
  if (send(fd, &req, req.h.nlmsg_len, 0) < 0) {
    err->Set(errno, "list nsids");
    return false;
  }
  alignas(nlmsghdr) static thread_local char rb[65536];
  for (;;) {
    ssize_t n = recv(fd, rb, sizeof(rb), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err->Set(errno, "list nsids");
      return false;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != req.h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return true;
        if (e->error == -EINTR || (h->nlmsg_flags & NLM_F_DUMP_INTR)) return DumpIds(fd, out, err);
        err->Set(-e->error, "list nsids");
        return false;
      }
      if (h->nlmsg_type != RTM_NEWNSID) continue;
      nlattr* tb[NETNSA_MAX + 1];
      if (nlmsg_parse(h, sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 && tb[NETNSA_NSID]) {
        out->insert(static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID])));
      }
    }
  }
}

// Waits until none of w.pending is left, or the deadline. Notifications wake us; the dump decides.
bool AwaitGone(Watch& w, std::chrono::steady_clock::time_point deadline, OpError* err) {
  alignas(nlmsghdr) char rb[16384];
  bool check = true;
  for (;;) {
    if (check) {
      std::set<int32_t> present;
      if (!DumpIds(w.ctl.get(), &present, err)) return false;
      for (auto it = w.pending.begin(); it != w.pending.end();) {
        if (present.count(it->first)) ++it;
        else it = w.pending.erase(it);
      }
      if (w.pending.empty()) return true;
      check = false;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      std::string names;
      int shown = 0;
      for (auto& kv : w.pending) {
        if (shown++ == 3) { names += " ..."; break; }
        names += (names.empty() ? "" : ", ") + kv.second;
      }
      err->Set(ETIMEDOUT, "wait for netns cleanup",
               std::to_string(w.pending.size()) + " namespace(s) still alive (a process or open file holds them?): " + names);
      return false;
    }
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    pollfd p{w.notify.get(), POLLIN, 0};
    int rc = poll(&p, 1, std::min(ms, 200) + 1);
    if (rc <= 0) {
      check = true;  // quiet for a while: look again anyway
      continue;
    }
    // Drain; any RTM_DELNSID of ours (or a lost notification, ENOBUFS) calls for a dump.
    for (;;) {
      ssize_t n = recv(w.notify.get(), rb, sizeof(rb), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          check = true;
          continue;
        }
        break;  // EAGAIN: drained
      }
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != RTM_DELNSID) continue;
        nlattr* tb[NETNSA_MAX + 1];
        if (nlmsg_parse(h, sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 && tb[NETNSA_NSID]) {
          w.pending.erase(static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID])));
          if (w.pending.empty()) check = true;
        }
      }
    }
  }
}

class WatchBeginJob : public Job {
 public:
  explicit WatchBeginJob(std::vector<std::string> paths) : paths_(std::move(paths)) {}

  void Execute() override {
    auto w = std::make_unique<Watch>();
    if (unshare(CLONE_NEWNET) != 0) {
      error.Set(errno, "watch netns", "unshare observer");
      return;
    }
    w->notify = OpenRtnl(&error, "observer");
    if (w->notify.valid()) w->ctl = OpenRtnl(&error, "observer");
    ReturnHome();
    if (error.failed()) return;
    int grp = RTNLGRP_NSID;
    setsockopt(w->notify.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp));
    int big = 8 << 20;
    if (setsockopt(w->notify.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
      setsockopt(w->notify.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    // A few fds at a time: this must work under a low RLIMIT_NOFILE too.
    std::vector<std::pair<Fd, std::string>> fds;
    for (auto& p : paths_) {
      OpError local;
      Fd fd = OpenNetns(p, &local);
      if (!fd.valid()) {
        missing_.push_back(p);
        continue;
      }
      fds.emplace_back(std::move(fd), p);
      if (fds.size() == 32 && !AssignIds(*w, fds, &error)) return;
    }
    if (!AssignIds(*w, fds, &error)) return;
    std::lock_guard<std::mutex> lock(watch_mu);
    handle_ = next_watch++;
    watches[handle_] = std::move(w);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("handle", handle_);
    Napi::Array m = Napi::Array::New(env, missing_.size());
    for (size_t i = 0; i < missing_.size(); i++) m.Set(i, missing_[i]);
    o.Set("missing", m);
    return o;
  }

 private:
  std::vector<std::string> paths_, missing_;
  uint32_t handle_ = 0;
};

std::unique_ptr<Watch> TakeWatch(uint32_t handle) {
  std::lock_guard<std::mutex> lock(watch_mu);
  auto it = watches.find(handle);
  if (it == watches.end()) return nullptr;
  auto w = std::move(it->second);
  watches.erase(it);
  return w;
}

class WatchWaitJob : public Job {
 public:
  WatchWaitJob(uint32_t handle, int64_t timeoutMs) : handle_(handle), timeoutMs_(timeoutMs) {}

  void Execute() override {
    std::unique_ptr<Watch> w = TakeWatch(handle_);
    if (!w) {
      error.Set(EINVAL, "wait for netns cleanup", "unknown watch");
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs_);
    if (!AwaitGone(*w, deadline, &error)) return;
    // The sentinel: created, given an id, dropped. See the comment on Watch.
    if (unshare(CLONE_NEWNET) != 0) {
      error.Set(errno, "wait for netns cleanup", "unshare sentinel");
      return;
    }
    std::vector<std::pair<Fd, std::string>> fds;
    fds.emplace_back(Fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)), "sentinel");
    ReturnHome();
    if (!fds[0].first.valid()) {
      error.Set(errno, "wait for netns cleanup", "open sentinel");
      return;
    }
    if (!AssignIds(*w, fds, &error)) return;  // closes the last handle: the sentinel dies
    AwaitGone(*w, deadline, &error);
  }

 private:
  uint32_t handle_;
  int64_t timeoutMs_;
};

// ---------------------------------------------------------------------------------------------

Napi::Value CreateChunk(const Napi::CallbackInfo& info) {
  std::vector<Item> items;
  Napi::Array list = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) items.push_back(ReadItem(list.Get(i).As<Napi::Object>()));
  return Submit(info.Env(), std::make_unique<CreateChunkJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                                             std::move(items)));
}

Napi::Value DeleteGroup(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<DeleteGroupJob>(info[0].As<Napi::String>(),
                                                             info[1].As<Napi::Number>().Uint32Value()));
}

std::vector<std::string> Strings(const Napi::Value& v) {
  std::vector<std::string> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::String>());
  return out;
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ReleaseJob>(Strings(info[0])));
}

Napi::Value WatchBegin(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<WatchBeginJob>(Strings(info[0])));
}

Napi::Value WatchWait(const Napi::CallbackInfo& info) {
  // Lasts as long as the kernel's cleanup: on a thread of its own, not one of ordinary calls'.
  return Submit(info.Env(), std::make_unique<WatchWaitJob>(info[0].As<Napi::Number>().Uint32Value(),
                                                           info[1].As<Napi::Number>().Int64Value()), Lane::kLongWait);
}

Napi::Value WatchClose(const Napi::CallbackInfo& info) {
  TakeWatch(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// RLIMIT_NOFILE and the number of descriptors open now, so lib/bulk.ts sizes its chunks to fit.
Napi::Value FdBudget(const Napi::CallbackInfo& info) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  int open = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') open++;
    }
    closedir(d);
    open--;  // the directory stream itself
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("limit", rl.rlim_cur == RLIM_INFINITY ? 1048576.0 : static_cast<double>(rl.rlim_cur));
  o.Set("open", open);
  return o;
}

}  // namespace

void InitBulk(Napi::Env env, Napi::Object exports) {
  exports.Set("bulkCreateChunk", Napi::Function::New(env, CreateChunk));
  exports.Set("bulkDeleteGroup", Napi::Function::New(env, DeleteGroup));
  exports.Set("bulkRelease", Napi::Function::New(env, Release));
  exports.Set("bulkWatchBegin", Napi::Function::New(env, WatchBegin));
  exports.Set("bulkWatchWait", Napi::Function::New(env, WatchWait));
  exports.Set("bulkWatchClose", Napi::Function::New(env, WatchClose));
  exports.Set("bulkFdBudget", Napi::Function::New(env, FdBudget));
}

}  // namespace nk
