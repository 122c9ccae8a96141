// libnftables through its JSON interface, inside a target namespace, on an addon worker thread.
//
// lib/nat-rules.ts builds every command as typed objects serialised with JSON.stringify; this
// file only hands that text to libnftables and returns libnftables' own JSON output. There is no
// `nft` process and no rule text: with JSON input nothing a user typed (an interface name, a tag)
// can be read as nftables syntax.
#include <nftables/libnftables.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "addon.h"

namespace nk {

namespace {

struct NftCtxFree {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};
using NftCtx = std::unique_ptr<nft_ctx, NftCtxFree>;

// libnftables keeps some process-wide state (its one-time init, symbol tables); running two
// contexts at once on different worker threads is not documented as safe, so one at a time.
std::mutex nft_mu;

// libnftables reports failures as text ("Error: Could not process rule: No such file or
// directory"). The kernel's errno is in that text as strerror(); find it so the caller gets a
// real code (ENOENT, EOPNOTSUPP, ...). Longest match wins ("Operation not permitted" must not be
// read as a shorter message that is its prefix).
int ErrnoFromText(const std::string& text) {
  int best = 0;
  size_t best_len = 0;
  for (int e = 1; e < 134; e++) {
    const char* s = strerror(e);
    size_t n = strlen(s);
    if (n > best_len && text.find(s) != std::string::npos && strncmp(s, "Unknown error", 13) != 0) {
      best = e;
      best_len = n;
    }
  }
  return best != 0 ? best : EINVAL;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs one libnftables command buffer (a JSON document: {"nftables": [...]}) in namespace `ns`.
// Every command in the buffer goes to the kernel as one batch: all of it applies or none does.
class NftRunJob : public Job {
 public:
  NftRunJob(std::string ns, std::string json) : ns_(std::move(ns)), json_(std::move(json)) {}

  void Execute() override {
    std::lock_guard<std::mutex> lock(nft_mu);
    // The context's netlink socket belongs to the namespace it is opened in, so the context is
    // created, used and freed while this thread is inside the target namespace.
    NsGuard guard(ns_, &error);
    if (!guard.ok()) return;
    NftCtx ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) {
      error.Set(ENOMEM, "nft", "cannot create a libnftables context");
      return;
    }
    // JSON output also makes libnftables read the input as JSON; handles let us delete rules.
    nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
      error.Set(ENOMEM, "nft", "cannot buffer libnftables output");
      return;
    }
    int rc = nft_run_cmd_from_buffer(ctx.get(), json_.c_str());
    const char* err_text = nft_ctx_get_error_buffer(ctx.get());
    if (rc != 0) {
      std::string text = Trim(err_text ? err_text : "");
      // No operation name of our own: lib/nat.ts names what the batch was for ("apply nat rules").
      error.Set(ErrnoFromText(text), "", "");
      error.extack = text.empty() ? "libnftables failed without a message" : text;
      return;
    }
    const char* out = nft_ctx_get_output_buffer(ctx.get());
    output_ = out ? out : "";
  }

  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, output_); }

 private:
  std::string ns_, json_, output_;
};

Napi::Value Run(const Napi::CallbackInfo& info) {
  // On its own thread: jobs queued behind nft_mu must not hold the workers of ordinary calls.
  return Submit(info.Env(), std::make_unique<NftRunJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>()), Lane::kNft);
}

}  // namespace

void InitNft(Napi::Env env, Napi::Object exports) { exports.Set("nftRun", Napi::Function::New(env, Run)); }

}  // namespace nk
