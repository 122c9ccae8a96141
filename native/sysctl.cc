#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"
#include "sysctl_file.h"

namespace nk {

bool WriteSysctl(const std::string& key, const std::string& value, OpError* err) {
  std::string path = "/proc/sys/" + key;
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) {
    err->Set(errno, "write sysctl", path);
    return false;
  }
  ssize_t n = write(fd.get(), value.data(), value.size());
  if (n < 0 || static_cast<size_t>(n) != value.size()) {
    err->Set(n < 0 ? errno : EIO, "write sysctl", path);
    return false;
  }
  return true;
}

bool ReadSysctl(const std::string& key, std::string* value, OpError* err) {
  std::string path = "/proc/sys/" + key;
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    err->Set(errno, "read sysctl", path);
    return false;
  }
  char buf[4096];
  value->clear();
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      err->Set(errno, "read sysctl", path);
      return false;
    }
    if (n == 0) break;
    value->append(buf, static_cast<size_t>(n));
  }
  while (!value->empty() && (value->back() == '\n')) value->pop_back();
  return true;
}

namespace {

class SysctlJob : public Job {
 public:
  SysctlJob(std::string ns, std::string key, bool write, std::string value)
      : ns_(std::move(ns)), key_(std::move(key)), write_(write), value_(std::move(value)) {}
  void Execute() override {
    NsGuard guard(ns_, &error);
    if (!guard.ok()) return;
    if (write_) {
      WriteSysctl(key_, value_, &error);
    } else {
      ReadSysctl(key_, &value_, &error);
    }
  }
  Napi::Value Result(Napi::Env env) override {
    return write_ ? env.Undefined() : Napi::String::New(env, value_);
  }

 private:
  std::string ns_, key_;
  bool write_;
  std::string value_;
};

Napi::Value Get(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<SysctlJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(), false, ""));
}

Napi::Value Set(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<SysctlJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(), true,
                                                        info[2].As<Napi::String>()));
}

}  // namespace

void InitSysctl(Napi::Env env, Napi::Object exports) {
  exports.Set("sysctlGet", Napi::Function::New(env, Get));
  exports.Set("sysctlSet", Napi::Function::New(env, Set));
}

}  // namespace nk
