/* Hello-world server in C on the same vendored Mongoose: the physical limit
 * for any binding of it. Built by run.py into benchmarks/bin/ with the same
 * defines as build_ffi.py:
 *   gcc -O2 -std=gnu99 -fno-strict-aliasing -DMG_TLS=MG_TLS_BUILTIN \
 *       -DMG_ENABLE_IPV6=1 -DMG_SOCK_LISTEN_BACKLOG_SIZE=4096 \
 *       -I../vendor/mongoose raw_c_server.c ../vendor/mongoose/mongoose.c -o bin/raw_c_server
 * Usage: raw_c_server --port N
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongoose.h"

static volatile sig_atomic_t s_stop = 0;

static void on_signal(int signo) {
  (void) signo;
  s_stop = 1;
}

static void fn(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    (void) ev_data;
    mg_http_reply(c, 200, "Content-Type: text/plain\r\n", "Hello, World!");
  }
}

int main(int argc, char *argv[]) {
  struct mg_mgr mgr;
  char url[64];
  int port = 8000, i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strncmp(argv[i], "--port=", 7) == 0) port = atoi(argv[i] + 7);
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  mg_log_set(MG_LL_ERROR);
  mg_mgr_init(&mgr);
  if (mg_http_listen(&mgr, url, fn, NULL) == NULL) {
    fprintf(stderr, "cannot listen on %s\n", url);
    return 1;
  }
  while (!s_stop) mg_mgr_poll(&mgr, 100);
  mg_mgr_free(&mgr);
  return 0;
}
