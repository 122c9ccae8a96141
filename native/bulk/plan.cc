// The chunk as lib/bulk.ts planned and validated it (see BulkItem in lib/native.ts).
#include <sys/socket.h>

#include "../js_value.h"
#include "../route.h"
#include "chunk.h"

namespace nk {
namespace bulk {

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
      RouteSpec r = ReadRouteSpec(x);
      r.index = static_cast<int>(OptInt(x, "devIndex").value_or(0));
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

}  // namespace bulk
}  // namespace nk
