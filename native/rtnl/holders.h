// RAII holders for every libnl object the addon touches, and the address conversions the object
// kinds share. One definition each: a file that needs an owner for an nl_msg, an nl_sock or an
// rtnl_* object takes it from here instead of declaring its own deleter.
#pragma once
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/object.h>
#include <netlink/socket.h>

#include <memory>
#include <string>

namespace nk {

// A deleter that calls libnl's own release function `Free` (a put for counted objects).
template <auto Free>
struct NlRelease {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};

// Any rtnl_* object (rtnl_link, rtnl_addr, rtnl_route, rtnl_neigh): they are all nl_objects with a
// reference count.
template <typename T>
struct NlPut {
  void operator()(T* p) const { nl_object_put(reinterpret_cast<nl_object*>(p)); }
};
template <typename T>
using NlPtr = std::unique_ptr<T, NlPut<T>>;

using NlAddr = std::unique_ptr<nl_addr, NlRelease<nl_addr_put>>;
using NlCache = std::unique_ptr<nl_cache, NlRelease<nl_cache_free>>;
using NlMsg = std::unique_ptr<nl_msg, NlRelease<nlmsg_free>>;
using NlSock = std::unique_ptr<nl_sock, NlRelease<nl_socket_free>>;
using NlCb = std::unique_ptr<nl_cb, NlRelease<nl_cb_put>>;

// A private copy of the socket's callbacks (its error handler included), to which a caller adds its
// own handlers without changing the socket's. Empty on ENOMEM.
inline NlCb CloneSocketCb(nl_sock* sk) {
  NlCb own(nl_socket_get_cb(sk));  // a counted reference, put back here
  return NlCb(nl_cb_clone(own.get()));
}

// "192.0.2.1", "2001:db8::1/64", "aa:bb:cc:dd:ee:ff" -> nl_addr (nullptr if it does not parse).
inline NlAddr ParseAddr(const std::string& text, int family) {
  nl_addr* a = nullptr;
  if (nl_addr_parse(text.c_str(), family, &a) < 0) return NlAddr();
  return NlAddr(a);
}

// Address without prefix ("192.0.2.1"), or "" for none.
inline std::string AddrToString(nl_addr* a) {
  if (a == nullptr || nl_addr_get_len(a) == 0) return "";
  char buf[128];
  NlAddr copy(nl_addr_clone(a));
  if (!copy) return "";
  // nl_addr2str appends "/len" unless the prefix covers the whole address.
  nl_addr_set_prefixlen(copy.get(), nl_addr_get_len(copy.get()) * 8);
  return nl_addr2str(copy.get(), buf, sizeof(buf));
}

}  // namespace nk
