// RAII holders for libnl objects and a few conversions shared by the object kinds.
#pragma once
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/object.h>

#include <memory>
#include <string>

namespace nk {

template <typename T>
struct NlPut {
  void operator()(T* p) const { nl_object_put(reinterpret_cast<nl_object*>(p)); }
};
template <typename T>
using NlPtr = std::unique_ptr<T, NlPut<T>>;

struct NlAddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using NlAddr = std::unique_ptr<nl_addr, NlAddrPut>;

struct NlCacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using NlCache = std::unique_ptr<nl_cache, NlCacheFree>;

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
