/* The C side of mongoose_py: compiled into _mongoose_cffi next to mongoose.c.
 *
 * Everything here exists for one of three reasons:
 *  - speed: mgpy_shim() is installed as c->fn on every connection and only
 *    calls into Python for the events the connection's mask asks for (no
 *    Python call per MG_EV_POLL unless someone listens);
 *  - safety: fixed-format replacements for Mongoose's variadic, NUL-truncating
 *    printf-style functions, and accessors for the bitfield flags;
 *  - lifetime: the per-connection struct mgpy_conn that carries the Python
 *    handle is created and freed here, tied to the C connection.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <poll.h>
#include <sys/socket.h>
#include "mongoose.h"

#define MGPY_EV_TIMER (MG_EV_USER + 100)
#define MGPY_EV_LOG (MG_EV_USER + 101)

#define MGPY_PROTO_RAW 0
#define MGPY_PROTO_HTTP 1
#define MGPY_PROTO_MQTT 2

enum {
  MGPY_F_LISTENING = 1 << 0, MGPY_F_CLIENT = 1 << 1, MGPY_F_ACCEPTED = 1 << 2,
  MGPY_F_RESOLVING = 1 << 3, MGPY_F_CONNECTING = 1 << 4, MGPY_F_TLS = 1 << 5,
  MGPY_F_TLS_HS = 1 << 6, MGPY_F_UDP = 1 << 7, MGPY_F_WEBSOCKET = 1 << 8,
  MGPY_F_MQTT5 = 1 << 9, MGPY_F_HEXDUMPING = 1 << 10, MGPY_F_DRAINING = 1 << 11,
  MGPY_F_CLOSING = 1 << 12, MGPY_F_FULL = 1 << 13, MGPY_F_RESP = 1 << 14,
  MGPY_F_READABLE = 1 << 15, MGPY_F_WRITABLE = 1 << 16
};

struct mgpy_limits {
  uint64_t max_head, max_headers, max_body, ws_max_message, send_high_water;
  uint32_t max_connections, head_timeout_ms, body_timeout_ms, idle_timeout_ms;
};

struct mgpy_conn {
  uint32_t mask;
  void *handle;
  struct mgpy_conn *parent;
  const struct mg_tls_opts *tls;
  int tls_required;
  size_t high_water;
  int depth; /* > 0 while an event of this connection is being dispatched */
  uint64_t last_rx; /* mg_millis() of the last MG_EV_READ: keepalive checks (MQTT) */
  unsigned char req_head;      /* accepted: the request being answered is HEAD */
  unsigned char req_close;     /* accepted: close once the response is complete */
  unsigned char sent_continue; /* accepted: "100 Continue" sent for this request */
  int tls_hs_pending; /* accepted TLS connection: MG_EV_TLS_HS not yet delivered */
  int ws_state;       /* 0 open, 1 our CLOSE sent, 2 failed/closing (input discarded) */
  int ws_shut;        /* shutdown(SHUT_WR) done while lingering */
  uint64_t ws_deadline; /* mg_millis() after which a closing WebSocket is dropped; 0 = none */
  size_t send_mark;     /* send.len when MG_EV_HTTP_MSG was dispatched: "replied yet?" */
  int kick;             /* response finished outside the handler, request buffered: parse at next poll */
  struct mgpy_limits lim; /* see _cdef.h; a listener's are copied into each accepted child */
};

/* The extern "Python" trampoline, defined by cffi below this code. */
static void mgpy_dispatch(struct mg_connection *c, int ev, void *ev_data,
                          struct mgpy_conn *st);

unsigned long mgpy_trampoline_calls = 0;

static void mgpy_ws_wrap(struct mg_connection *c);
void mgpy_accept_pending(struct mg_mgr *mgr); /* _mongoose_unit.c */

/* The built-in TLS logs why a certificate is refused ("cert is no longer
 * valid: after=...") and then fails with a bare "failed to parse certificate":
 * mgpy_log_char() keeps that reason for the MG_EV_ERROR that follows. */
static _Thread_local char mgpy_tls_why[128];

/* Events the binding itself must see, whatever the user asked for. */
#define MGPY_ALWAYS ((1u << MG_EV_OPEN) | (1u << MG_EV_CLOSE))

struct mgpy_conn *mgpy_conn_new(uint32_t mask, void *handle) {
  struct mgpy_conn *st = (struct mgpy_conn *) calloc(1, sizeof(*st));
  if (st != NULL) st->mask = mask | MGPY_ALWAYS, st->handle = handle;
  return st;
}

void mgpy_conn_free(struct mgpy_conn *st) { free(st); }

/* TLS URL with no TLS set up by now: refuse, never fall back to plaintext. */
static void mgpy_check_tls(struct mg_connection *c, struct mgpy_conn *st) {
  if (st->tls_required && !c->is_tls_hs && !c->is_closing) {
    mg_error(c, "TLS not initialised: pass tls=TlsOpts(...) or call tls_init()");
  }
}

static bool mgpy_header_is(struct mg_http_message *hm, const char *name, const char *value) {
  struct mg_str *v = mg_http_get_header(hm, name);
  return v != NULL && mg_strcasecmp(*v, mg_str(value)) == 0;
}

/* Per-request facts Mongoose does not act on: HEAD (a reply carries no body),
 * "Connection: close" / HTTP/1.0 without keep-alive (close once the response
 * is complete, also after a static file or a chunked stream), and
 * "Expect: 100-continue" (answer it while the body is still missing). */
static int mgpy_http_request(struct mg_connection *c, int ev, struct mg_http_message *hm,
                             struct mgpy_conn *st) {
  bool http10 = mg_strcasecmp(hm->proto, mg_str("HTTP/1.0")) == 0;
  if (ev == MG_EV_HTTP_HDRS) {
    /* Decided here (the handler may consume recv, which hm points into), sent
     * after the handler only if it did not answer (e.g. 413) or close. */
    size_t have = (size_t) ((char *) c->recv.buf + c->recv.len - hm->body.buf);
    return !st->sent_continue && !http10 && hm->body.len != (size_t) -1 && have < hm->body.len &&
           mgpy_header_is(hm, "Expect", "100-continue");
  }
  st->sent_continue = 0;
  st->req_head = mg_strcasecmp(hm->method, mg_str("HEAD")) == 0;
  st->req_close = mgpy_header_is(hm, "Connection", "close") ||
                  (http10 && !mgpy_header_is(hm, "Connection", "keep-alive"));
  return 0;
}

static void mgpy_shim(struct mg_connection *c, int ev, void *ev_data) {
  struct mgpy_conn *st = (struct mgpy_conn *) c->fn_data;
  int want_continue = 0;
  size_t sent_mark = 0;
  if (st == NULL) return;
  if (ev == MG_EV_OPEN && c->is_accepted) {
    /* Mongoose copied the listener's fn_data into this child: give the child
     * a state of its own. The listener is alive for the whole accept. */
    struct mgpy_conn *child = (struct mgpy_conn *) calloc(1, sizeof(*child));
    if (child == NULL) {
      c->fn_data = NULL;
      c->is_closing = 1;
      return;
    }
    child->mask = st->mask;
    child->parent = st;
    child->tls = st->tls;
    child->tls_required = st->tls_required;
    child->high_water = st->high_water;
    child->lim = st->lim;
    c->fn_data = st = child;
  }
  /* Mongoose's built-in TLS fires MG_EV_TLS_HS on clients only: give accepted
   * connections theirs too, before the first event that follows the handshake. */
  if (st->tls_hs_pending && !c->is_tls_hs && ev != MG_EV_CLOSE && ev != MG_EV_ERROR) {
    st->tls_hs_pending = 0;
    if (c->is_tls && (st->mask & (1u << MG_EV_TLS_HS))) {
      mgpy_trampoline_calls++;
      st->depth++;
      mgpy_dispatch(c, MG_EV_TLS_HS, NULL, st);
      st->depth--;
    }
  }
  if ((ev == MG_EV_ACCEPT || ev == MG_EV_CONNECT) && st->tls != NULL && !c->is_tls_hs) {
    mg_tls_init(c, st->tls);
  }
  if (ev == MG_EV_ERROR && c->is_resolving && ev_data != NULL &&
      strcmp((const char *) ev_data, "resolver") == 0) {
    /* The A lookup got no address and the AAAA retry has no server (the
     * Manager disables it): say what happened instead of "resolver". */
    ev_data = (void *) "DNS lookup failed: no such host";
  }
  if (c->is_accepted && (ev == MG_EV_HTTP_HDRS || ev == MG_EV_HTTP_MSG)) {
    want_continue = mgpy_http_request(c, ev, (struct mg_http_message *) ev_data, st);
    sent_mark = st->send_mark = c->send.len;
  }
  if (ev < 32 && (st->mask & (1u << ev))) {
    char why[256];
    void *data = ev_data;
    if (ev == MG_EV_ERROR && c->is_tls && c->is_tls_hs && ev_data != NULL) {
      /* a failed handshake: say so, and why when Mongoose only logged it */
      const char *msg = (const char *) ev_data;
      int detail = mgpy_tls_why[0] != '\0' && strstr(msg, "certificate") != NULL;
      snprintf(why, sizeof(why), "TLS handshake failed: %s%s%s%s", msg, detail ? " (" : "",
               detail ? mgpy_tls_why : "", detail ? ")" : "");
      data = why;
    }
    if (ev == MG_EV_ERROR) mgpy_tls_why[0] = '\0';
    mgpy_trampoline_calls++;
    st->depth++;
    mgpy_dispatch(c, ev, data, st);
    st->depth--;
  } else if (ev == MG_EV_ERROR) {
    mgpy_tls_why[0] = '\0';
  }
  if (want_continue && c->send.len == sent_mark && !c->is_closing && !c->is_draining) {
    mg_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    st->sent_continue = 1;
  }
  if (st->req_close && !c->is_resp && c->is_accepted && !c->is_websocket) {
    st->req_close = 0; /* the response is complete: flush it, then close */
    c->is_draining = 1;
  }
  switch (ev) {
    case MG_EV_ACCEPT:
      st->parent = NULL;
      st->tls = NULL; /* the listener owns the opts; children only used them here */
      mgpy_check_tls(c, st);
      if (c->is_tls_hs) st->tls_hs_pending = 1;
      break;
    case MG_EV_CONNECT:
      mgpy_check_tls(c, st);
      break;
    case MG_EV_POLL:
      /* Paused: mg_iotest() marks a TLS connection with buffered records
       * readable even when is_full, and read_conn() would then decrypt into
       * recv without limit (until MG_MAX_RECV_SIZE kills the connection). */
      if (c->is_full) c->is_readable = 0;
      break;
    case MG_EV_READ:
      st->last_rx = mg_millis();
      /* Backpressure: stop reading once the unread input reaches high water.
       * is_full alone makes Mongoose's epoll loop spin (MONGOOSE.md §0.5), so
       * mgpy_poll() also removes such connections from the wait set. */
      if (st->high_water && c->recv.len >= st->high_water) c->is_full = 1;
      break;
    case MG_EV_CLOSE:
      c->fn_data = NULL;
      free(st);
      break;
  }
}

unsigned mgpy_flags(struct mg_connection *c) {
  return (c->is_listening ? MGPY_F_LISTENING : 0) | (c->is_client ? MGPY_F_CLIENT : 0) |
         (c->is_accepted ? MGPY_F_ACCEPTED : 0) | (c->is_resolving ? MGPY_F_RESOLVING : 0) |
         (c->is_connecting ? MGPY_F_CONNECTING : 0) | (c->is_tls ? MGPY_F_TLS : 0) |
         (c->is_tls_hs ? MGPY_F_TLS_HS : 0) | (c->is_udp ? MGPY_F_UDP : 0) |
         (c->is_websocket ? MGPY_F_WEBSOCKET : 0) | (c->is_mqtt5 ? MGPY_F_MQTT5 : 0) |
         (c->is_hexdumping ? MGPY_F_HEXDUMPING : 0) | (c->is_draining ? MGPY_F_DRAINING : 0) |
         (c->is_closing ? MGPY_F_CLOSING : 0) | (c->is_full ? MGPY_F_FULL : 0) |
         (c->is_resp ? MGPY_F_RESP : 0) | (c->is_readable ? MGPY_F_READABLE : 0) |
         (c->is_writable ? MGPY_F_WRITABLE : 0);
}

void mgpy_set_flag(struct mg_connection *c, unsigned flag, int on) {
  unsigned v = on ? 1 : 0;
  switch (flag) {
    case MGPY_F_CLOSING: c->is_closing = v; break;
    case MGPY_F_DRAINING: c->is_draining = v; break;
    case MGPY_F_FULL: c->is_full = v; break;
    case MGPY_F_RESP: c->is_resp = v; break;
    case MGPY_F_HEXDUMPING: c->is_hexdumping = v; break;
    default: break;
  }
}

struct mg_connection *mgpy_listen(struct mg_mgr *mgr, const char *url, int proto,
                                  struct mgpy_conn *st) {
  struct mg_connection *c;
  st->tls_required = mg_url_is_ssl(url);
  if (proto == MGPY_PROTO_HTTP) c = mg_http_listen(mgr, url, mgpy_shim, st);
  else if (proto == MGPY_PROTO_MQTT) c = mg_mqtt_listen(mgr, url, mgpy_shim, st);
  else c = mg_listen(mgr, url, mgpy_shim, st);
  return c;
}

struct mg_connection *mgpy_connect(struct mg_mgr *mgr, const char *url, int proto,
                                   struct mgpy_conn *st) {
  st->tls_required = mg_url_is_ssl(url);
  if (proto == MGPY_PROTO_HTTP) return mg_http_connect(mgr, url, mgpy_shim, st);
  return mg_connect(mgr, url, mgpy_shim, st);
}

struct mg_connection *mgpy_ws_connect(struct mg_mgr *mgr, const char *url,
                                      const char *extra_headers, struct mgpy_conn *st) {
  struct mg_connection *c;
  st->tls_required = mg_url_is_ssl(url);
  if (extra_headers != NULL && extra_headers[0] != '\0') {
    c = mg_ws_connect(mgr, url, mgpy_shim, st, "%s", extra_headers);
  } else {
    c = mg_ws_connect(mgr, url, mgpy_shim, st, NULL);
  }
  mgpy_ws_wrap(c);
  return c;
}

struct mg_connection *mgpy_mqtt_connect(struct mg_mgr *mgr, const char *url,
                                        const struct mg_mqtt_opts *opts, struct mgpy_conn *st) {
  st->tls_required = mg_url_is_ssl(url);
  return mg_mqtt_connect(mgr, url, opts, mgpy_shim, st);
}

struct mg_connection *mgpy_sntp_connect(struct mg_mgr *mgr, const char *url,
                                        struct mgpy_conn *st) {
  return mg_sntp_connect(mgr, url, mgpy_shim, st);
}

/* One loop iteration. Two things Mongoose's own mg_mgr_poll() gets wrong for
 * us are fixed around it:
 *  - timers do not shorten the wait, so a 10 ms timer under poll(1000) would
 *    fire a second late: clamp the wait to the next timer deadline;
 *  - on epoll, a connection paused with is_full stays registered for EPOLLIN
 *    and makes epoll_wait return at once, forever (a busy loop): take such
 *    connections out of the wait set while paused, put them back after. */
void mgpy_poll(struct mg_mgr *mgr, int ms) {
  uint64_t now = mg_millis();
  struct mg_timer *t;
  struct mg_connection *c;
  /* Pipelined requests left waiting behind a deferred response (mgpy_resp_done):
   * Mongoose only parses on new input, so dispatch them before waiting. */
  for (c = mgr->conns; c != NULL; c = c->next) {
    struct mgpy_conn *st = c->fn == mgpy_shim ? (struct mgpy_conn *) c->fn_data : NULL;
    if (st != NULL && st->kick) {
      long n = 0;
      st->kick = 0;
      if (c->recv.len > 0 && !c->is_closing && !c->is_resp) mg_call(c, MG_EV_READ, &n);
    }
  }
  for (t = mgr->timers; t != NULL && ms > 0; t = t->next) {
    if (t->expire == 0 || t->expire <= now) ms = 0;
    else if (t->expire - now < (uint64_t) ms) ms = (int) (t->expire - now);
  }
#if MG_ENABLE_EPOLL
  {
    /* mg_iotest() re-registers EPOLLIN|EPOLLOUT for every connection that has
     * output queued, paused or not: a paused connection whose peer does not
     * read (the usual backpressure case) would then spin again. So paused
     * connections leave the epoll set (errors only) and, when they have output,
     * we wait for "epoll has events OR a paused socket is writable" with
     * poll() first, then let Mongoose run without waiting. */
    struct pollfd pfds[64];
    nfds_t n = 0;
    int quick = 0;
    for (c = mgr->conns; c != NULL; c = c->next) {
      if (c->is_closing || c->rtls.len > 0 || mg_tls_pending(c) > 0) quick = 1;
      if (c->is_full && c->fd != NULL && !c->is_listening) {
        struct epoll_event ev = {EPOLLERR | EPOLLHUP, {c}};
        epoll_ctl(mgr->epoll_fd, EPOLL_CTL_MOD, (int) (size_t) c->fd, &ev);
        if (c->send.len > 0 && !c->is_tls_hs) {
          if (n < 63) {
            pfds[n].fd = (int) (size_t) c->fd, pfds[n].events = POLLOUT, pfds[n].revents = 0;
            n++;
          } else {
            quick = 1; /* too many to watch: do not sleep */
          }
        }
      }
    }
    if (n > 0) {
      if (ms > 0 && !quick) {
        pfds[n].fd = mgr->epoll_fd, pfds[n].events = POLLIN, pfds[n].revents = 0;
        poll(pfds, n + 1, ms);
      }
      ms = 0;
    }
  }
#else
  (void) c;
#endif
  mg_mgr_poll(mgr, ms);
  mgpy_accept_pending(mgr);
}

/* Resume reading on a paused connection (clears is_full, re-arms EPOLLIN). */
void mgpy_resume(struct mg_connection *c) {
  c->is_full = 0;
#if MG_ENABLE_EPOLL
  if (c->fd != NULL) {
    struct epoll_event ev = {EPOLLIN | EPOLLERR | EPOLLHUP, {c}};
    if (c->send.len > 0) ev.events |= EPOLLOUT;
    epoll_ctl(c->mgr->epoll_fd, EPOLL_CTL_MOD, (int) (size_t) c->fd, &ev);
  }
#endif
}

/* Free a manager nobody closed (garbage-collected): detach our per-connection
 * state first so that the MG_EV_CLOSE events of mg_mgr_free never reach
 * Python objects that are being collected. */
void mgpy_mgr_destroy(struct mg_mgr *mgr) {
  struct mg_connection *c;
  for (c = mgr->conns; c != NULL; c = c->next) {
    if (c->fn == mgpy_shim) {
      free(c->fn_data);
      c->fn_data = NULL;
    }
  }
  mg_mgr_free(mgr); /* frees the timers before its last poll: no timer fires */
}

/* SO_REUSEPORT for the next listener opened on this thread (mgpy_listen). */
static _Thread_local int mgpy_reuse_port = 0;

int mgpy_bind(int fd, const struct sockaddr *addr, socklen_t len) {
#ifdef SO_REUSEPORT
  if (mgpy_reuse_port) {
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, (const void *) &on, sizeof(on));
  }
#endif
  return bind(fd, addr, len);
}

struct mg_connection *mgpy_listen_reuse(struct mg_mgr *mgr, const char *url, int proto,
                                        struct mgpy_conn *st) {
  struct mg_connection *c;
  mgpy_reuse_port = 1;
  c = mgpy_listen(mgr, url, proto, st);
  mgpy_reuse_port = 0;
  return c;
}

/* The wakeup pipe is our doorbell for cross-thread calls: returns its
 * connection id (0 on failure). mg_wakeup_init puts it at the list head. */
unsigned long mgpy_doorbell_init(struct mg_mgr *mgr) {
  if (!mg_wakeup_init(mgr) || mgr->conns == NULL) return 0;
  return mgr->conns->id;
}

/* ---- HTTP helpers: binary-safe, exact Content-Length, no format strings ---- */

const char *mgpy_reason(int code) {
  switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

/* The response on c is complete. Mongoose parses the next pipelined request
 * only while is_resp is 0, and re-checks only when is_resp flips *during that
 * connection's MG_EV_POLL*; a reply made later (a timer, another thread, a
 * wakeup) would leave pipelined requests unparsed until more bytes arrive.
 * So kick the parser, unless an event of c is on the stack (then Mongoose's
 * own parse loop continues by itself, and re-entering it would be unsafe). */
void mgpy_resp_done(struct mg_connection *c) {
  struct mgpy_conn *st = (struct mgpy_conn *) c->fn_data;
  c->is_resp = 0;
  /* Not parsed here: a reply must not run Python handlers before it returns
   * (see reentrant in _ffi.py). mgpy_poll parses it first thing. */
  if (st != NULL && st->depth == 0 && c->recv.len > 0 && !c->is_closing) st->kick = 1;
}

/* A chunk; the empty one ends the response (see mgpy_resp_done). */
void mgpy_http_chunk(struct mg_connection *c, const void *buf, size_t len) {
  mg_http_write_chunk(c, (const char *) buf, len);
  if (len == 0) mgpy_resp_done(c);
}

/* Status line + caller's header lines + Content-Length + body, in one send
 * buffer append when it fits on the stack. chunked: no Content-Length and no
 * body; the response stays open (is_resp) until the terminating chunk. */
void mgpy_http_reply(struct mg_connection *c, int code, const char *headers,
                     const void *body, size_t len, int chunked) {
  char stack[4096];
  size_t hlen = headers ? strlen(headers) : 0;
  struct mgpy_conn *st = c->fn == mgpy_shim ? (struct mgpy_conn *) c->fn_data : NULL;
  int head = c->is_accepted && st != NULL && st->req_head; /* RFC 9110 9.3.2: no content */
  size_t cap = 96 + hlen + (chunked ? 0 : len);
  char *buf = cap <= sizeof(stack) ? stack : (char *) malloc(cap);
  size_t n;
  if (buf == NULL) { /* not mg_error: a reply never runs handlers (mgpy_resp_done) */
    MG_ERROR(("%lu out of memory for a %lu-byte reply", c->id, (unsigned long) cap));
    c->is_closing = 1;
    return;
  }
  n = (size_t) snprintf(buf, 64, "HTTP/1.1 %d %s\r\n", code, mgpy_reason(code));
  if (hlen) memcpy(buf + n, headers, hlen), n += hlen;
  if (chunked) {
    memcpy(buf + n, "\r\n", 2), n += 2;
  } else {
    n += (size_t) snprintf(buf + n, 48, "Content-Length: %lu\r\n\r\n", (unsigned long) len);
    if (len && !head) memcpy(buf + n, body, len), n += len;
  }
  mg_send(c, buf, n);
  if (buf != stack) free(buf);
  if (!chunked) mgpy_resp_done(c);
}

void mgpy_error(struct mg_connection *c, const char *msg) { mg_error(c, "%s", msg); }

void mgpy_serve(struct mg_connection *c, struct mg_http_message *hm, const char *root_or_path,
                const char *extra_headers, const char *mime_types, const char *page404,
                int is_file) {
  struct mg_http_serve_opts opts;
  memset(&opts, 0, sizeof(opts));
  opts.extra_headers = extra_headers && extra_headers[0] ? extra_headers : NULL;
  opts.mime_types = mime_types && mime_types[0] ? mime_types : NULL;
  opts.page404 = page404 && page404[0] ? page404 : NULL;
  if (is_file) {
    mg_http_serve_file(c, hm, root_or_path, &opts);
  } else {
    /* Mongoose serves page404 with status 200: serve the directory without
     * it; if that answered 404, replace the answer with the page, status 404. */
    size_t mark = c->send.len;
    const char *page = opts.page404;
    opts.root_dir = root_or_path;
    opts.page404 = NULL;
    mg_http_serve_dir(c, hm, &opts);
    if (page != NULL && c->send.len - mark >= 12 &&
        memcmp(c->send.buf + mark, "HTTP/1.1 404", 12) == 0) {
      static const char ok[] = "HTTP/1.1 200 OK\r\n", nf[] = "HTTP/1.1 404 Not Found\r\n";
      c->send.len = mark;
      c->is_resp = 1; /* mg_http_reply cleared it; static_cb clears it after the file */
      mg_http_serve_file(c, hm, page, &opts);
      if (c->send.len - mark >= sizeof(ok) - 1 && memcmp(c->send.buf + mark, ok, sizeof(ok) - 1) == 0) {
        mg_iobuf_del(&c->send, mark, sizeof(ok) - 1);
        mg_iobuf_add(&c->send, mark, nf, sizeof(nf) - 1);
      }
    }
  }
}

/* ---- timers: routed through the same trampoline (c == NULL) ---- */

static void mgpy_timer_cb(void *arg) { mgpy_dispatch(NULL, MGPY_EV_TIMER, arg, NULL); }

struct mg_timer *mgpy_timer_add(struct mg_mgr *mgr, uint64_t ms, unsigned flags,
                                void *handle) {
  return mg_timer_add(mgr, ms, flags, mgpy_timer_cb, handle);
}

/* Only called between loop iterations (never from inside mg_timer_poll) and
 * only for timers Mongoose has not auto-deleted: see _timer.py. */
void mgpy_timer_cancel(struct mg_mgr *mgr, struct mg_timer *t) {
  mg_timer_free(&mgr->timers, t);
  mg_free(t);
}

/* ---- logging: Mongoose prints one char at a time; hand Python whole lines ---- */

static _Thread_local char mgpy_log_buf[1024];
static _Thread_local size_t mgpy_log_len = 0;

static void mgpy_log_char(char ch, void *param) {
  (void) param;
  if (ch == '\n' || mgpy_log_len == sizeof(mgpy_log_buf) - 1) {
    while (mgpy_log_len > 0 && mgpy_log_buf[mgpy_log_len - 1] == '\r') mgpy_log_len--;
    mgpy_log_buf[mgpy_log_len] = '\0';
    mgpy_log_len = 0;
    {
      const char *w = strstr(mgpy_log_buf, "cert is ");
      if (w != NULL) snprintf(mgpy_tls_why, sizeof(mgpy_tls_why), "%s", w);
    }
    mgpy_dispatch(NULL, MGPY_EV_LOG, mgpy_log_buf, NULL);
    if (ch == '\n') return;
  }
  mgpy_log_buf[mgpy_log_len++] = ch;
}

void mgpy_log_init(void) { mg_log_set_fn(mgpy_log_char, NULL); }

/* ---- hashes with their context structs kept on the C side ---- */

void mgpy_md5(const void *data, size_t len, unsigned char out[16]) {
  mg_md5_ctx ctx;
  mg_md5_init(&ctx);
  mg_md5_update(&ctx, (const unsigned char *) data, len);
  mg_md5_final(&ctx, out);
}

void mgpy_sha1(const void *data, size_t len, unsigned char out[20]) {
  mg_sha1_ctx ctx;
  mg_sha1_init(&ctx);
  mg_sha1_update(&ctx, (const unsigned char *) data, len);
  mg_sha1_final(out, &ctx);
}
