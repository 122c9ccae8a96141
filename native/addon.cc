// Entry point of the netns-kit addon. Each object kind registers its own functions; the full
// JavaScript-facing type of what is registered here lives in lib/native.ts.
#include "addon.h"

namespace nk {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitWorkerPool(env, exports);
  InitNetns(env, exports);
  InitLink(env, exports);
  InitAddr(env, exports);
  InitRoute(env, exports);
  InitNeigh(env, exports);
  InitSysctl(env, exports);
  InitNft(env, exports);
  InitConntrack(env, exports);
  InitBridgePort(env, exports);
  InitFileLock(env, exports);
  InitWatch(env, exports);
  InitBulk(env, exports);
  InitSocket(env, exports);
  InitTc(env, exports);
  InitRule(env, exports);
  InitNexthop(env, exports);
  InitFdb(env, exports);
  return exports;
}

}  // namespace nk

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return nk::Init(env, exports); }

NODE_API_MODULE(netns_kit, InitAddon)
