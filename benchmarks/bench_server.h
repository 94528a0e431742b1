/* What the C benchmark servers share (raw_c_server.c, ws_raw_c_server.c):
 * their command-line options and a loop that polls until SIGINT/SIGTERM.
 * Each server is one translation unit with mongoose.c, so these are static. */
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

/* The value of option `name` ("--port N" or "--port=N"), or NULL. */
static const char *arg_value(int argc, char *argv[], const char *name) {
  size_t n = strlen(name);
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], name) == 0 && i + 1 < argc) return argv[i + 1];
    if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
  }
  return NULL;
}

/* Listen on scheme://127.0.0.1:PORT (--port, default 8000) with `fn` and poll
 * until SIGINT/SIGTERM; returns main()'s exit code. */
static int serve(int argc, char *argv[], const char *scheme, mg_event_handler_t fn) {
  struct mg_mgr mgr;
  char url[64];
  const char *port = arg_value(argc, argv, "--port");
  snprintf(url, sizeof(url), "%s://127.0.0.1:%d", scheme, port != NULL ? atoi(port) : 8000);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  mg_log_set(MG_LL_ERROR);
  mg_mgr_init(&mgr);
  if (mg_http_listen(&mgr, url, fn, NULL) == NULL) {
    fprintf(stderr, "cannot listen on %s\n", url);
    mg_mgr_free(&mgr);
    return 1;
  }
  while (!s_stop) mg_mgr_poll(&mgr, 100);
  mg_mgr_free(&mgr);
  return 0;
}
