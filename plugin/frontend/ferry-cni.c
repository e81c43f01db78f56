// ferry's CNI plugin binary: what kubelet (through containerd or CRI-O)
// executes for every pod. Starting Node.js takes ~110 ms, too slow for a CNI
// call, so this small program forwards the call — the CNI_* environment and
// the network configuration on stdin — to ferry's node daemon over a
// root-only unix socket and prints the daemon's answer. When no daemon
// listens, it runs the TypeScript plugin in-process instead (execs node),
// so a node without the daemon still works, only slower.
//
// Wire format (little endian), one request per connection:
//   request:  u32 nenv, nenv × (u32 len, "KEY=VALUE"), u32 stdin_len, stdin
//   response: i32 exit_code, u32 stdout_len, stdout
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef FERRY_SOCKET
#define FERRY_SOCKET "/run/ferry/cni.sock"
#endif
#ifndef FERRY_NODE
#define FERRY_NODE "/usr/bin/node"
#endif
#ifndef FERRY_PLUGIN_MAIN
#define FERRY_PLUGIN_MAIN "/opt/ferry/dist/plugin/main.js"
#endif

extern char **environ;

// The CNI spec's error object, for failures before any plugin code runs.
// Code 5 is "I/O failure".
static void fail(const char *what) {
  printf("{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"ferry CNI frontend: %s\",\"details\":\"%s\"}\n", what,
         strerror(errno));
  exit(1);
}

static char *read_all(int fd, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  if (!buf) fail("out of memory");
  for (;;) {
    if (n == cap && !(buf = realloc(buf, cap *= 2))) fail("out of memory");
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("cannot read");
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

static void write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("cannot write to the ferry daemon");
    p += w;
    len -= (size_t)w;
  }
}

static void write_u32(int fd, uint32_t v) { write_all(fd, &v, sizeof v); }

static int read_exact(int fd, void *out, size_t len) {
  char *p = out;
  while (len > 0) {
    ssize_t r = read(fd, p, len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

static int connect_daemon(void) {
  const char *path = getenv("FERRY_CNI_SOCKET");
  if (!path || !*path) path = FERRY_SOCKET;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) return -1;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Only the variables a CNI call is made of travel to the daemon.
static int forwarded(const char *kv) { return strncmp(kv, "CNI_", 4) == 0; }

static int via_daemon(int fd, const char *in, size_t in_len) {
  uint32_t n = 0;
  for (char **e = environ; *e; e++) n += forwarded(*e);
  write_u32(fd, n);
  for (char **e = environ; *e; e++) {
    if (!forwarded(*e)) continue;
    write_u32(fd, (uint32_t)strlen(*e));
    write_all(fd, *e, strlen(*e));
  }
  write_u32(fd, (uint32_t)in_len);
  write_all(fd, in, in_len);
  int32_t code;
  uint32_t out_len;
  if (read_exact(fd, &code, sizeof code) < 0 || read_exact(fd, &out_len, sizeof out_len) < 0)
    fail("the ferry daemon closed the connection without an answer");
  char *out = malloc(out_len + 1);
  if (!out || read_exact(fd, out, out_len) < 0) fail("short answer from the ferry daemon");
  write_all(STDOUT_FILENO, out, out_len);
  return code;
}

// No daemon: hand stdin (already read) to the TypeScript plugin through a
// memfd, and become it.
static void in_process(const char *in, size_t in_len, char **argv) {
  int mem = memfd_create("ferry-cni-stdin", MFD_CLOEXEC);
  if (mem < 0) fail("memfd_create");
  write_all(mem, in, in_len);
  if (lseek(mem, 0, SEEK_SET) < 0 || dup2(mem, STDIN_FILENO) < 0) fail("cannot pass stdin on");
  const char *node = getenv("FERRY_NODE");
  const char *main_js = getenv("FERRY_PLUGIN_MAIN");
  char *args[] = {(char *)(node && *node ? node : FERRY_NODE), (char *)(main_js && *main_js ? main_js : FERRY_PLUGIN_MAIN),
                  NULL};
  (void)argv;
  execv(args[0], args);
  fail("cannot start node for the in-process plugin");
}

int main(int argc, char **argv) {
  (void)argc;
  size_t in_len;
  char *in = read_all(STDIN_FILENO, &in_len);
  int fd = connect_daemon();
  if (fd < 0) in_process(in, in_len, argv);
  return via_daemon(fd, in, in_len);
}
