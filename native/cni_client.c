/*
 * netns-kit-cni, the executable a container runtime runs as the CNI plugin.
 *
 * Starting Node costs more than a whole call of the reference Go plugin, so this small client
 * hands the call (environment, stdin, and who the caller is) to the resident helper,
 * `netns-kit-cni --serve`, over <run dir>/resident.sock, prints the helper's answer and exits
 * with its code. It does no CNI work of its own.
 *
 * Whenever the helper cannot answer, the client runs the plugin itself, exactly as without it:
 * it execs `node dist/bin/netns-kit-cni.js` from the same package, with the same environment and
 * the same stdin (saved in a memfd when it was already read). That covers: no socket or no one
 * accepting on it, a helper that declines (caller in another mount/user namespace, ...), and a
 * connection that breaks before the answer (the helper stopped mid-call; plugin calls are safe to
 * repeat). NETNS_KIT_CNI_STANDALONE=1 skips the helper altogether.
 *
 * The wire format is described in lib/cni/resident.ts, the other end. C, not C++: it must start
 * in well under a millisecond and link nothing but libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_RUN_DIR "/run/netns-kit-cni"
#define SOCKET_NAME "resident.sock"
#define INVOKED_AS "NETNS_KIT_CNI_INVOKED_AS"

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      /* Out of memory for a few kilobytes: nothing sensible is left but to report it. */
      fputs("netns-kit-cni: out of memory\n", stderr);
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_u32(struct buf *b, uint32_t v) {
  unsigned char le[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
  put(b, le, 4);
}

static void put_field(struct buf *b, const char *key, const void *value, size_t n) {
  put_u32(b, (uint32_t)strlen(key));
  put(b, key, strlen(key));
  put_u32(b, (uint32_t)n);
  put(b, value, n);
}

static void put_str(struct buf *b, const char *key, const char *value) { put_field(b, key, value, strlen(value)); }

/* "DEV:INO" of a namespace file, the identity the helper checks against /proc/PID/ns/... */
static int ns_id(const char *path, char *out, size_t size) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  snprintf(out, size, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  return 0;
}

static int read_all(int fd, struct buf *b) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    put(b, chunk, (size_t)n);
  }
}

static int write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; -1 on EOF or error (the helper went away). */
static int read_exact(int fd, void *out, size_t n) {
  char *p = out;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r == 0) return -1;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

/*
 * Runs the plugin in this process's place: node on dist/bin/netns-kit-cni.js of the package this
 * executable was built in (build/Release/ -> ../../). `stdin_copy` is what was already read from
 * stdin, or NULL when stdin was not touched.
 */
static void run_standalone(int argc, char **argv, const struct buf *stdin_copy) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  const char *why = "cannot find the package";
  if (n > 0) {
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) { /* strip the file name, then Release, then build */
      char *slash = strrchr(exe, '/');
      if (!slash) break;
      *slash = '\0';
    }
    char script[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s/dist/bin/netns-kit-cni.js", exe);
    if (stdin_copy) {
      int fd = memfd_create("netns-kit-cni-stdin", 0);
      if (fd < 0 || write_all(fd, stdin_copy->p, stdin_copy->len) != 0 || lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 0) < 0) {
        why = "cannot pass stdin on";
        goto fail;
      }
      close(fd);
    }
    setenv(INVOKED_AS, base_name(argv[0]), 1);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) goto fail;
    args[0] = "node";
    args[1] = script;
    for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
    execvp("node", args);
    /* Runtimes sometimes start plugins with a minimal PATH: try the usual places too. */
    execv("/usr/bin/node", args);
    execv("/usr/local/bin/node", args);
    why = "cannot run node (not on PATH, /usr/bin or /usr/local/bin)";
  }
fail:
  /* The spec's error JSON; 999 with no cniVersion known is the best this side of Node can say. */
  printf("{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"netns-kit-cni: %s\",\"details\":\"%s\"}\n", why, strerror(errno));
  fflush(stdout);
  exit(1);
}

int main(int argc, char **argv) {
  /* Arguments are for people (--help, --serve, ...), never from a runtime: Node handles them. */
  const char *standalone = getenv("NETNS_KIT_CNI_STANDALONE");
  if (argc > 1 || (standalone && *standalone && strcmp(standalone, "0") != 0)) run_standalone(argc, argv, NULL);

  const char *run_dir = getenv("NETNS_KIT_CNI_RUN_DIR");
  if (!run_dir || !*run_dir) run_dir = DEFAULT_RUN_DIR;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%s", run_dir, SOCKET_NAME) >= sizeof addr.sun_path) {
    run_standalone(argc, argv, NULL);
  }
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (sock >= 0) close(sock);
    run_standalone(argc, argv, NULL); /* no helper: stdin is untouched, Node reads it */
  }

  struct buf in = {0};
  /* A terminal is "nothing to read" (VERSION by hand), and so is a closed stdin (EBADF). */
  if (!isatty(0) && read_all(0, &in) != 0 && errno != EBADF) {
    printf("{\"cniVersion\":\"1.0.0\",\"code\":5,\"msg\":\"failed to read network configuration from stdin\",\"details\":\"%s\"}\n", strerror(errno));
    fflush(stdout);
    return 1;
  }

  char id[64], pid[24];
  struct buf req = {0};
  put(&req, "NKC1", 4);
  put_u32(&req, 0); /* length, filled in below */
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  put_str(&req, "pid", pid);
  static const char *const kinds[][2] = {{"netns", "/proc/self/ns/net"}, {"mntns", "/proc/self/ns/mnt"}, {"userns", "/proc/self/ns/user"}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (ns_id(kinds[i][1], id, sizeof id) != 0) {
      close(sock);
      run_standalone(argc, argv, &in);
    }
    put_str(&req, kinds[i][0], id);
  }
  put_str(&req, "argv0", base_name(argv[0]));
  for (char **e = environ; *e; e++) put_str(&req, "env", *e);
  put_field(&req, "stdin", in.p ? in.p : "", in.len);
  uint32_t body = (uint32_t)(req.len - 8);
  unsigned char le[4] = {body & 0xff, (body >> 8) & 0xff, (body >> 16) & 0xff, (body >> 24) & 0xff};
  memcpy(req.p + 4, le, 4);

  unsigned char head[9];
  if (write_all(sock, req.p, req.len) != 0 || read_exact(sock, head, 1) != 0) {
    close(sock);
    run_standalone(argc, argv, &in);
  }
  if (head[0] == 'R' && read_exact(sock, head + 1, 8) == 0) {
    uint32_t code = get_u32(head + 1), len = get_u32(head + 5);
    struct buf out = {0};
    if (len) {
      out.p = malloc(len);
      if (!out.p || read_exact(sock, out.p, len) != 0) {
        close(sock);
        run_standalone(argc, argv, &in);
      }
      out.len = len;
    }
    close(sock);
    if (out.len && write_all(1, out.p, out.len) != 0) return 1;
    return (int)code;
  }
  /* 'D' (declined, with a reason for NETNS_KIT_CNI_DEBUG) or anything unexpected: run the plugin here. */
  if (head[0] == 'D' && getenv("NETNS_KIT_CNI_DEBUG") && read_exact(sock, head + 1, 4) == 0) {
    uint32_t len = get_u32(head + 1);
    char reason[512];
    size_t take = len < sizeof reason - 1 ? len : sizeof reason - 1;
    if (read_exact(sock, reason, take) == 0) {
      reason[take] = '\0';
      fprintf(stderr, "netns-kit-cni: resident helper declined: %s\n", reason);
    }
  }
  close(sock);
  run_standalone(argc, argv, &in);
  return 1;
}
