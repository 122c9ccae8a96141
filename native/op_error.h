// The one way a native failure is described. It crosses to JavaScript as plain data
// ({ errno, syscall, extack }) and lib/errors.ts turns it into a NetnsError.
#pragma once
#include <string>

namespace nk {

struct OpError {
  int err = 0;          // positive errno (EEXIST, ENOENT, ...); 0 means "no error"
  std::string op;       // what we were doing, e.g. "add link" or "setns"
  std::string extack;   // the kernel's extended-ack message, when it gave one
  std::string detail;   // our own context, e.g. the path that failed

  bool failed() const { return err != 0; }
  void Set(int e, std::string what, std::string why = "") {
    if (err != 0) return;  // keep the first (root) cause
    err = e;
    op = std::move(what);
    detail = std::move(why);
  }
};

}  // namespace nk
