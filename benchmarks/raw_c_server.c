/* Hello-world server in C on the same vendored Mongoose: the physical limit
 * for any binding of it. Built by run.py into benchmarks/bin/ with the same
 * defines as build_ffi.py:
 *   gcc -O2 -std=gnu99 -fno-strict-aliasing -DMG_TLS=MG_TLS_BUILTIN \
 *       -DMG_ENABLE_IPV6=1 -DMG_SOCK_LISTEN_BACKLOG_SIZE=4096 \
 *       -I../vendor/mongoose raw_c_server.c ../vendor/mongoose/mongoose.c -o bin/raw_c_server
 * Usage: raw_c_server --port N
 */
#include "bench_server.h"

static void fn(struct mg_connection *c, int ev, void *ev_data) {
  if (ev == MG_EV_HTTP_MSG) {
    (void) ev_data;
    mg_http_reply(c, 200, "Content-Type: text/plain\r\n", "Hello, World!");
  }
}

int main(int argc, char *argv[]) {
  return serve(argc, argv, "http", fn);
}
