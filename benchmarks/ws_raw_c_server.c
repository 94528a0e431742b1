/* WebSocket echo and HTTPS hello in C on the same vendored Mongoose: the
 * ceiling for any binding of it (and a check that the load generator is not
 * the bottleneck). Built by bench_ws.py into benchmarks/bin/ with the
 * defines and CFLAGS of build_ffi.py.
 * Usage: ws_raw_c_server --port N [--cert FILE --key FILE]
 *   without --cert: http://, upgrades every request and echoes each message;
 *   with --cert/--key: https:// (Mongoose's built-in TLS), answers
 *   "Hello, World!" (and still upgrades requests with an Upgrade header). */
#include "bench_server.h"

static struct mg_str s_cert, s_key;
static int s_tls = 0;

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
  const char *cert = arg_value(argc, argv, "--cert"), *key = arg_value(argc, argv, "--key");
  int rc;
  if (cert != NULL && key != NULL) {
    s_cert = mg_file_read(&mg_fs_posix, cert);
    s_key = mg_file_read(&mg_fs_posix, key);
    if (s_cert.buf == NULL || s_key.buf == NULL) {
      fprintf(stderr, "cannot read %s or %s\n", cert, key);
      return 1;
    }
    s_tls = 1;
  }
  rc = serve(argc, argv, s_tls ? "https" : "http", fn);
  free((void *) s_cert.buf);
  free((void *) s_key.buf);
  return rc;
}
