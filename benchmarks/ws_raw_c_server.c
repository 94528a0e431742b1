/* WebSocket echo and HTTPS hello in C on the same vendored Mongoose: the
 * ceiling for any binding of it (and a check that the load generator is not
 * the bottleneck). Built by bench_ws.py into benchmarks/bin/ with the
 * defines and CFLAGS of build_ffi.py.
 * Usage: ws_raw_c_server --port N [--cert FILE --key FILE]
 *   without --cert: http://, upgrades every request and echoes each message;
 *   with --cert/--key: https:// (Mongoose's built-in TLS), answers
 *   "Hello, World!" (and still upgrades requests with an Upgrade header). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mongoose.h"

static volatile sig_atomic_t s_stop = 0;
static struct mg_str s_cert, s_key;
static int s_tls = 0;

static void on_signal(int signo) {
  (void) signo;
  s_stop = 1;
}

static void fn(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_ACCEPT && s_tls) {
    struct mg_tls_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.cert = s_cert;
    opts.key = s_key;
    mg_tls_init(c, &opts);
  } else if (ev == MG_EV_HTTP_MSG) {
    struct mg_http_message *hm = (struct mg_http_message *) ev_data;
    if (!s_tls || mg_http_get_header(hm, "Upgrade") != NULL) {
      mg_ws_upgrade(c, hm, NULL);
    } else {
      mg_http_reply(c, 200, "Content-Type: text/plain\r\n", "Hello, World!");
    }
  } else if (ev == MG_EV_WS_MSG) {
    struct mg_ws_message *wm = (struct mg_ws_message *) ev_data;
    mg_ws_send(c, wm->data.buf, wm->data.len, wm->flags & 15);
  }
}

int main(int argc, char *argv[]) {
  struct mg_mgr mgr;
  char url[64];
  const char *cert = NULL, *key = NULL;
  int port = 8000, i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) cert = argv[++i];
    else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) key = argv[++i];
  }
  if (cert != NULL && key != NULL) {
    s_cert = mg_file_read(&mg_fs_posix, cert);
    s_key = mg_file_read(&mg_fs_posix, key);
    if (s_cert.buf == NULL || s_key.buf == NULL) {
      fprintf(stderr, "cannot read %s or %s\n", cert, key);
      return 1;
    }
    s_tls = 1;
  }
  snprintf(url, sizeof(url), "%s://127.0.0.1:%d", s_tls ? "https" : "http", port);
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
  free((void *) s_cert.buf);
  free((void *) s_key.buf);
  return 0;
}
