// Sockets for users, created inside a namespace (the native half of lib/sockets.ts).
//
// A socket belongs to the network namespace of the thread that called socket(2), for its whole
// life. So a worker thread enters the namespace, creates the socket, sets its options, binds it,
// starts a non-blocking connect if asked, and comes back (NsGuard verifies the way back). The
// descriptor then goes to JavaScript, where Node wraps it in its ordinary classes (net.Socket,
// net.Server, dgram.Socket); the namespace never matters again.
//
// A connect usually cannot finish while the worker is inside the namespace (a SYN takes a round
// trip, a lost one seconds), and the workers are shared by every call. So the worker only starts
// it (EINPROGRESS) and the wait happens on the main thread's own event loop: a uv_poll for
// writability, the way libuv waits for its own connects. No thread is occupied while the peer
// answers, timeouts and AbortSignals are plain JavaScript, and cancelling just stops the poll.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "addon.h"
#include "js_value.h"

namespace nk {

namespace {

struct Endpoint {
  std::string address;  // IP literal, without a zone
  std::string scope;    // IPv6 zone: an interface name inside the namespace ('' for none)
  int port = 0;
};

struct SocketSpec {
  int family = AF_INET;
  int type = SOCK_STREAM;
  int protocol = 0;
  bool reuseAddr = false;
  std::optional<bool> ipv6Only;
  // The wildcard listener default ("::" dual-stack): on a kernel without IPv6, use 0.0.0.0.
  bool fallbackV4 = false;
  std::optional<Endpoint> bind;
  std::optional<Endpoint> connect;
};

// Builds a sockaddr for `e`. Runs inside the namespace: a zone names an interface there.
bool ToSockaddr(int family, const Endpoint& e, sockaddr_storage* ss, socklen_t* len, const char* op, OpError* err) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(e.port));
    if (inet_pton(AF_INET, e.address.empty() ? "0.0.0.0" : e.address.c_str(), &sin->sin_addr) != 1) {
      err->Set(EINVAL, op, "bad IPv4 address " + e.address);
      return false;
    }
    *len = sizeof(*sin);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(e.port));
  if (inet_pton(AF_INET6, e.address.empty() ? "::" : e.address.c_str(), &sin6->sin6_addr) != 1) {
    err->Set(EINVAL, op, "bad IPv6 address " + e.address);
    return false;
  }
  if (!e.scope.empty()) {
    unsigned idx = if_nametoindex(e.scope.c_str());
    if (idx == 0) {
      err->Set(errno == 0 ? ENODEV : errno, op, "zone %" + e.scope + ": no such interface");
      return false;
    }
    sin6->sin6_scope_id = idx;
  }
  *len = sizeof(*sin6);
  return true;
}

std::string Describe(const Endpoint& e) {
  std::string host = (e.address.empty() ? "*" : e.address) + (e.scope.empty() ? "" : "%" + e.scope);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(e.port);
}

bool SetInt(int fd, int level, int name, int value, const char* what, OpError* err) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    err->Set(errno, "setsockopt", what);
    return false;
  }
  return true;
}

// socket() + options + bind() + connect() inside the namespace, in that order; any failure closes
// the descriptor (Fail()), so nothing is left anywhere.
class OpenJob : public Job {
 public:
  OpenJob(std::string ns, SocketSpec spec) : ns_(std::move(ns)), spec_(std::move(spec)) {}

  void Execute() override {
    NsGuard guard(ns_, &error);
    if (!guard.ok()) return;
    int family = spec_.family;
    fd_ = socket(family, spec_.type | SOCK_NONBLOCK | SOCK_CLOEXEC, spec_.protocol);
    if (fd_ < 0 && errno == EAFNOSUPPORT && spec_.fallbackV4) {
      family = AF_INET;
      if (spec_.bind) spec_.bind->address = "";
      fd_ = socket(family, spec_.type | SOCK_NONBLOCK | SOCK_CLOEXEC, spec_.protocol);
    }
    if (fd_ < 0) {
      error.Set(errno, "socket");
      return;
    }
    if (spec_.reuseAddr && !SetInt(fd_, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", &error)) return Fail();
    if (family == AF_INET6 && spec_.ipv6Only &&
        !SetInt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, *spec_.ipv6Only ? 1 : 0, "IPV6_V6ONLY", &error)) {
      return Fail();
    }
    sockaddr_storage ss;
    socklen_t len = 0;
    if (spec_.bind) {
      if (!ToSockaddr(family, *spec_.bind, &ss, &len, "bind", &error)) return Fail();
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        error.Set(errno, "bind", Describe(*spec_.bind));
        return Fail();
      }
    }
    if (spec_.connect) {
      if (!ToSockaddr(family, *spec_.connect, &ss, &len, "connect", &error)) return Fail();
      if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        if (errno != EINPROGRESS) {
          // Refused or unreachable at once (a local port, no route): the kernel already knows.
          error.Set(errno, "connect", Describe(*spec_.connect));
          return Fail();
        }
        connecting_ = true;
      }
    }
  }

  // Until Result() hands it over, the job owns the descriptor: a job dropped because its
  // environment went away closes it here.
  ~OpenJob() override { Fail(); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("connecting", connecting_);
    o.Set("fd", std::exchange(fd_, -1));  // JavaScript owns it from here on
    return o;
  }

 private:
  void Fail() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  std::string ns_;
  SocketSpec spec_;
  int fd_ = -1;
  bool connecting_ = false;
};

// ---- waiting for a connect on the main thread's loop -------------------------------------------

struct ConnectWait {
  uint32_t id = 0;
  napi_env env = nullptr;
  int fd = -1;
  uv_poll_t poll{};
  Napi::FunctionReference done;
  std::unique_ptr<Napi::AsyncContext> context;
};

std::mutex waits_mu;
std::unordered_map<uint32_t, ConnectWait*> waits;  // by id; each entry is touched only by its env's thread
uint32_t next_id = 1;                               // under waits_mu

void OnClosed(uv_handle_t* h) { delete static_cast<ConnectWait*>(h->data); }

void EnvGone(void* arg);

// Stops watching (the descriptor stays open) and schedules the record's deletion.
void Stop(ConnectWait* w) {
  {
    std::lock_guard<std::mutex> lock(waits_mu);
    waits.erase(w->id);
  }
  napi_remove_env_cleanup_hook(w->env, EnvGone, w);
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

// The environment is being torn down (a worker terminated mid-connect): JavaScript will never
// close the descriptor, so it is closed here.
void EnvGone(void* arg) {
  auto* w = static_cast<ConnectWait*>(arg);
  {
    std::lock_guard<std::mutex> lock(waits_mu);
    waits.erase(w->id);
  }
  uv_poll_stop(&w->poll);
  close(w->fd);
  w->done.Reset();
  w->context.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
}

void OnWritable(uv_poll_t* handle, int status, int) {
  auto* w = static_cast<ConnectWait*>(handle->data);
  // POLLERR arrives as status UV_EBADF; SO_ERROR holds the real reason (ECONNREFUSED, ...).
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
  if (so_error == 0 && status < 0) so_error = -status;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::FunctionReference done = std::move(w->done);
  std::unique_ptr<Napi::AsyncContext> context = std::move(w->context);
  Stop(w);
  // MakeCallback: runs the microtasks the callback queues (the promise it settles) right after.
  try {
    done.MakeCallback(env.Global(), {Napi::Number::New(env, -so_error), Napi::String::New(env, so_error ? strerror(so_error) : "")}, *context);
  } catch (const Napi::Error& e) {
    // Never unwind through libuv: hand the exception to Node's uncaughtException handling.
    napi_fatal_exception(env, e.Value());
  }
}

Napi::Value WaitConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "netns-kit: no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new ConnectWait();
  w->env = env;
  w->fd = fd;
  w->done = Napi::Persistent(info[1].As<Napi::Function>());
  w->context = std::make_unique<Napi::AsyncContext>(env, "netns-kit:connect");
  int rc = uv_poll_init_socket(loop, &w->poll, fd);
  if (rc != 0) {
    delete w;
    Napi::Error::New(env, std::string("netns-kit: cannot poll the socket: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  w->poll.data = w;
  rc = uv_poll_start(&w->poll, UV_WRITABLE, OnWritable);
  if (rc != 0) {
    w->done.Reset();
    w->context.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnClosed);
    Napi::Error::New(env, std::string("netns-kit: cannot poll the socket: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  {
    std::lock_guard<std::mutex> lock(waits_mu);
    w->id = next_id++;
    if (next_id == 0) next_id = 1;
    waits[w->id] = w;
  }
  napi_add_env_cleanup_hook(env, EnvGone, w);
  return Napi::Number::New(env, w->id);
}

// Stops a wait without calling its callback (JavaScript gave up: timeout or abort) and leaves the
// descriptor to the caller. False when the wait had already finished.
Napi::Value CancelWait(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  ConnectWait* w = nullptr;
  {
    std::lock_guard<std::mutex> lock(waits_mu);
    auto it = waits.find(id);
    if (it != waits.end() && it->second->env == info.Env()) w = it->second;
  }
  if (w == nullptr) return Napi::Boolean::New(info.Env(), false);
  w->done.Reset();
  w->context.reset();
  Stop(w);
  return Napi::Boolean::New(info.Env(), true);
}

std::optional<Endpoint> ReadEndpoint(const Napi::Object& o, const char* key) {
  auto v = OptObject(o, key);
  if (!v) return std::nullopt;
  Endpoint e;
  e.address = String(*v, "address");
  e.scope = String(*v, "scope");
  e.port = static_cast<int>(OptInt(*v, "port").value_or(0));
  return e;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Object o = info[1].As<Napi::Object>();
  SocketSpec spec;
  spec.family = OptInt(o, "family").value_or(4) == 6 ? AF_INET6 : AF_INET;
  std::string type = String(o, "type");
  spec.type = type == "udp" ? SOCK_DGRAM : type == "raw" ? SOCK_RAW : SOCK_STREAM;
  spec.protocol = static_cast<int>(OptInt(o, "protocol").value_or(0));
  spec.reuseAddr = OptBool(o, "reuseAddr").value_or(false);
  spec.ipv6Only = OptBool(o, "ipv6Only");
  spec.fallbackV4 = OptBool(o, "fallbackV4").value_or(false);
  spec.bind = ReadEndpoint(o, "bind");
  spec.connect = ReadEndpoint(o, "connect");
  return Submit(info.Env(), std::make_unique<OpenJob>(info[0].As<Napi::String>(), std::move(spec)));
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("socketOpen", Napi::Function::New(env, Open));
  exports.Set("socketWaitConnect", Napi::Function::New(env, WaitConnect));
  exports.Set("socketCancelWait", Napi::Function::New(env, CancelWait));
}

}  // namespace nk
