#include "ns_enter.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <linux/magic.h>

namespace nk {

namespace {

thread_local int home_fd = -1;
thread_local NsId home_id;

NsId CurrentThreadNs() {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) != 0) {
    perror("netns-kit: stat /proc/thread-self/ns/net");
    abort();
  }
  return NsId{st.st_dev, st.st_ino};
}

}  // namespace

NsRef ParseNsRef(const std::string& ref) {
  NsRef r;
  size_t cut = ref.find('\0');
  r.path = ref.substr(0, cut);
  if (cut == std::string::npos) return r;
  const char* text = ref.c_str() + cut + 1;
  char* end = nullptr;
  unsigned long long dev = strtoull(text, &end, 10);
  if (end == nullptr || *end != ':') return r;
  unsigned long long ino = strtoull(end + 1, &end, 10);
  r.pinned = true;
  r.expect = NsId{static_cast<dev_t>(dev), static_cast<ino_t>(ino)};
  return r;
}

bool CheckPinned(const NsRef& r, const NsId& now, OpError* err) {
  if (!r.pinned || r.expect == now) return true;
  err->Set(ESTALE, "open netns", r.path + " now holds another namespace than the one this handle was made for");
  return false;
}

bool NsIdOfPath(const std::string& ref, NsId* out, OpError* err) {
  NsRef r = ParseNsRef(ref);
  const std::string& path = r.path;
  // The identity first, then whether it is (still) a namespace: a delete that unmounts between the
  // two calls then reads as "gone" (ENOENT), never as the empty file it leaves being "another
  // namespace" (ESTALE).
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    err->Set(errno, "open netns", path);
    return false;
  }
  struct statfs sfs {};
  if (statfs(path.c_str(), &sfs) != 0) {
    err->Set(errno, "open netns", path);
    return false;
  }
  if (sfs.f_type != NSFS_MAGIC) {
    // An entry in /run/netns whose bind mount is gone: the namespace does not exist any more.
    err->Set(ENOENT, "open netns", path + " is not a network namespace");
    return false;
  }
  *out = NsId{st.st_dev, st.st_ino};
  return CheckPinned(r, *out, err);
}

Fd OpenNetns(const std::string& ref, OpError* err) {
  NsRef r = ParseNsRef(ref);
  const std::string& path = r.path;
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    err->Set(errno, "open netns", path);
    return fd;
  }
  struct statfs sfs {};
  if (fstatfs(fd.get(), &sfs) != 0 || sfs.f_type != NSFS_MAGIC) {
    err->Set(ENOENT, "open netns", path + " is not a network namespace");
    fd.reset();
    return fd;
  }
  if (r.pinned) {
    // The descriptor, not the path: what is checked is what will be entered.
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) {
      err->Set(errno, "open netns", path);
      fd.reset();
    } else if (!CheckPinned(r, NsId{st.st_dev, st.st_ino}, err)) {
      fd.reset();
    }
  }
  return fd;
}

void RememberHomeNamespace() {
  home_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home_fd < 0) {
    perror("netns-kit: open /proc/thread-self/ns/net");
    abort();
  }
  home_id = CurrentThreadNs();
}

namespace {

void ReturnHome() {
  if (home_fd < 0) {
    fprintf(stderr, "netns-kit: namespace switch on a thread the addon does not own\n");
    abort();
  }
  if (setns(home_fd, CLONE_NEWNET) != 0 || !(CurrentThreadNs() == home_id)) {
    perror("netns-kit: cannot return a worker thread to its namespace");
    abort();
  }
}

}  // namespace

NsGuard::NsGuard(const std::string& path, OpError* err) {
  if (path.empty()) {
    ok_ = true;
    return;
  }
  if (home_fd < 0) {
    fprintf(stderr, "netns-kit: namespace switch on a thread the addon does not own\n");
    abort();
  }
  Fd fd = OpenNetns(path, err);
  if (!fd.valid()) return;
  if (setns(fd.get(), CLONE_NEWNET) != 0) {
    err->Set(errno, "setns", NsPath(path));
    return;
  }
  entered_ = true;
  ok_ = true;
}

NsGuard::~NsGuard() {
  if (entered_) ReturnHome();
}

ScopedUnshare::~ScopedUnshare() {
  if (away_) ReturnHome();
}

bool ScopedUnshare::Enter(OpError* err, const char* op, const std::string& detail) {
  if (home_fd < 0) {
    fprintf(stderr, "netns-kit: namespace switch on a thread the addon does not own\n");
    abort();
  }
  if (unshare(CLONE_NEWNET) != 0) {
    err->Set(errno, op, detail);
    return false;
  }
  away_ = true;
  return true;
}

}  // namespace nk
