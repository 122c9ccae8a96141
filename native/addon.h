// Shared includes for the per-object-kind files, and the init function each one exports.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "fd.h"
#include "ns_enter.h"
#include "op_error.h"
#include "worker_pool.h"

namespace nk {
void InitNetns(Napi::Env env, Napi::Object exports);
void InitLink(Napi::Env env, Napi::Object exports);
void InitAddr(Napi::Env env, Napi::Object exports);
void InitRoute(Napi::Env env, Napi::Object exports);
void InitNeigh(Napi::Env env, Napi::Object exports);
void InitSysctl(Napi::Env env, Napi::Object exports);
void InitNft(Napi::Env env, Napi::Object exports);
void InitConntrack(Napi::Env env, Napi::Object exports);
void InitBridgePort(Napi::Env env, Napi::Object exports);
void InitFileLock(Napi::Env env, Napi::Object exports);
void InitWatch(Napi::Env env, Napi::Object exports);
void InitBulk(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitTc(Napi::Env env, Napi::Object exports);
void InitRule(Napi::Env env, Napi::Object exports);
void InitNexthop(Napi::Env env, Napi::Object exports);
void InitFdb(Napi::Env env, Napi::Object exports);
}  // namespace nk
