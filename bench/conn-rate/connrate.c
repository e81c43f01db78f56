// The connection-rate bench's client and server, small enough that the
// figures are the path's and the kernel's, not this program's.
//
//   connrate server ADDR PORT [CPU]
//       listens on ADDR:PORT; accepts and closes every connection. Prints
//       "listening" once ready.
//   connrate client ADDR PORT SECONDS [CPU]
//       for SECONDS (after a warm-up of a fifth of that, not counted): a
//       TCP socket, a blocking connect() to ADDR:PORT (given up after 1 s:
//       a failure), an abortive close (SO_LINGER 0: a RST, so no TIME_WAIT
//       piles up and no port runs out), in a loop. Each connect() is timed (CLOCK_MONOTONIC); prints
//       one JSON line: connections, failures, seconds, and connect latency
//       percentiles in nanoseconds.
//
// CPU pins the process to one CPU, so client and server do not share one.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "connrate: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void pin(const char *cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(atoi(cpu), &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
}

static struct sockaddr_in address(const char *addr, const char *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    fprintf(stderr, "connrate: not an IPv4 address: %s\n", addr);
    exit(2);
  }
  return sa;
}

static _Noreturn void server(struct sockaddr_in sa) {
  int one = 1;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  if (listen(s, 4096) < 0) die("listen");
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c >= 0) close(c);
    else if (errno != EINTR && errno != ECONNABORTED) die("accept");
  }
}

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *sorted, size_t n, double q) {
  return n == 0 ? 0 : sorted[(size_t)(q * (double)(n - 1) + 0.5)];
}

static int client(struct sockaddr_in sa, double seconds) {
  const struct linger abortive = {.l_onoff = 1, .l_linger = 0};
  const struct timeval give_up = {.tv_sec = 1};
  size_t cap = 1 << 20, n = 0;
  uint64_t *lat = malloc(cap * sizeof *lat);
  uint64_t failures = 0;
  if (!lat) die("malloc");
  uint64_t start = now_ns();
  uint64_t counted_from = start + (uint64_t)(seconds * 0.2e9);
  uint64_t end = counted_from + (uint64_t)(seconds * 1e9);
  uint64_t t;
  while ((t = now_ns()) < end) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    setsockopt(s, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &give_up, sizeof give_up);
    uint64_t t0 = now_ns();
    int r = connect(s, (struct sockaddr *)&sa, sizeof sa);
    uint64_t t1 = now_ns();
    close(s);
    if (t0 < counted_from) continue;
    if (r < 0) {
      failures++;
      continue;
    }
    if (n == cap) {
      cap *= 2;
      lat = realloc(lat, cap * sizeof *lat);
      if (!lat) die("realloc");
    }
    lat[n++] = t1 - t0;
  }
  double elapsed = (double)(t - counted_from) / 1e9;
  qsort(lat, n, sizeof *lat, by_value);
  printf("{\"connections\":%zu,\"failures\":%llu,\"seconds\":%.6f,\"p50_ns\":%llu,\"p90_ns\":%llu,\"p99_ns\":%llu,\"min_ns\":%llu,\"max_ns\":%llu}\n",
         n, (unsigned long long)failures, elapsed, (unsigned long long)percentile(lat, n, 0.5),
         (unsigned long long)percentile(lat, n, 0.9), (unsigned long long)percentile(lat, n, 0.99),
         (unsigned long long)(n ? lat[0] : 0), (unsigned long long)(n ? lat[n - 1] : 0));
  free(lat);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "server") == 0) {
    if (argc > 4) pin(argv[4]);
    server(address(argv[2], argv[3]));
  }
  if (argc >= 5 && strcmp(argv[1], "client") == 0) {
    if (argc > 5) pin(argv[5]);
    return client(address(argv[2], argv[3]), atof(argv[4]));
  }
  fprintf(stderr, "usage: connrate server ADDR PORT [CPU] | connrate client ADDR PORT SECONDS [CPU]\n");
  return 2;
}
