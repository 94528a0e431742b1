/* WebSocket part of the shim (concatenated after _shim.c by build_ffi.py:
 * one translation unit, so statics are shared). */

/* ---- WebSocket: RFC 6455 checks and close handshakes Mongoose leaves out ----
 *
 * mgpy_ws_guard() wraps Mongoose's protocol handler (mg_ws_cb, static in
 * mongoose.c, so we learn its address from the first connection) and looks at
 * every frame before Mongoose does:
 *  - reserved bits/opcodes, an unmasked client frame (a masked server frame),
 *    a fragmented or > 125 byte control frame, a stray or missing continuation:
 *    CLOSE 1002;
 *  - a message (all its fragments) longer than MGPY_WS_MAX_MESSAGE: CLOSE 1009,
 *    decided from the frame header, before buffering it (Mongoose would
 *    otherwise buffer up to MG_MAX_RECV_SIZE and drop the connection silently).
 * Frames before the bad one are delivered first. After sending that CLOSE the
 * connection discards its input, half-closes once the frame is out (so the
 * peer reads it instead of a reset) and is dropped on the peer's EOF or after
 * 2 s. The handler gets MG_EV_ERROR "WebSocket ...: closing with 1002".
 * mgpy_ws_close() sends our CLOSE and waits (up to timeout_ms) for the peer's
 * CLOSE, which is delivered as MG_EV_WS_CTL and not echoed again. */
#define MGPY_WS_MAX_MESSAGE (MG_MAX_RECV_SIZE - 16)

static mg_event_handler_t mgpy_mg_ws_cb = NULL;

struct mgpy_ws_hdr {
  size_t hlen, dlen;
  uint8_t flags, masked;
};

/* 1: header complete (dlen capped at MAX + 1), 0: need more bytes */
static int mgpy_ws_parse(const uint8_t *b, size_t len, struct mgpy_ws_hdr *h) {
  size_t n, ml;
  if (len < 2) return 0;
  h->flags = b[0], h->masked = (uint8_t) (b[1] & 128), n = b[1] & 127;
  ml = h->masked ? 4 : 0;
  if (n < 126) {
    h->hlen = 2 + ml, h->dlen = n;
  } else if (n == 126) {
    if (len < 4) return 0;
    h->hlen = 4 + ml, h->dlen = ((size_t) b[2] << 8) | b[3];
  } else {
    uint64_t v = 0;
    int i;
    if (len < 10) return 0;
    for (i = 2; i < 10; i++) v = (v << 8) | b[i];
    h->hlen = 10 + ml;
    h->dlen = v > MGPY_WS_MAX_MESSAGE ? (size_t) MGPY_WS_MAX_MESSAGE + 1 : (size_t) v;
  }
  return 1;
}

static void mgpy_ws_fail(struct mg_connection *c, struct mgpy_conn *st, uint16_t code,
                         const char *why) {
  uint8_t frame[2 + 64];
  char msg[96];
  size_t n = strlen(why);
  if (n > 64) n = 64;
  frame[0] = (uint8_t) (code >> 8), frame[1] = (uint8_t) (code & 255);
  memcpy(frame + 2, why, n);
  c->recv.len = 0;
  c->pfn_data = NULL;
  mg_ws_send(c, frame, 2 + n, WEBSOCKET_OP_CLOSE);
  st->ws_state = 2;
  st->ws_deadline = mg_millis() + 2000;
  snprintf(msg, sizeof(msg), "WebSocket %s: closing with %u", why, (unsigned) code);
  if (c->fn != NULL) c->fn(c, MG_EV_ERROR, msg); /* informs; does not close at once */
}

static void mgpy_ws_guard(struct mg_connection *c, int ev, void *ev_data) {
  struct mgpy_conn *st = c->fn == mgpy_shim ? (struct mgpy_conn *) c->fn_data : NULL;
  if (st == NULL) {
    mgpy_mg_ws_cb(c, ev, ev_data);
    return;
  }
  if (ev == MG_EV_POLL && st->ws_deadline) {
    if (st->ws_state == 2 && !st->ws_shut && c->send.len == 0 && !c->is_tls && c->fd != NULL) {
      shutdown((int) (size_t) c->fd, SHUT_WR);
      st->ws_shut = 1;
    }
    if (mg_millis() > st->ws_deadline) c->is_closing = 1;
  }
  if (ev == MG_EV_READ && c->is_websocket) {
    size_t ofs = (size_t) c->pfn_data, p = ofs, total = ofs > 0 ? ofs - 1 : 0;
    size_t close_at = (size_t) -1;
    int in_frag = ofs > 0;
    uint16_t code = 0;
    const char *why = NULL;
    if (st->ws_state == 2) {
      c->recv.len = 0; /* failed or closed: discard whatever still arrives */
      c->pfn_data = NULL;
      return;
    }
    while (p < c->recv.len) {
      struct mgpy_ws_hdr h;
      uint8_t op, fin;
      if (!mgpy_ws_parse(c->recv.buf + p, c->recv.len - p, &h)) break;
      op = h.flags & 15, fin = h.flags & 128;
      if (h.flags & 0x70) code = 1002, why = "frame with reserved bits";
      else if ((op > 2 && op < 8) || op > 10) code = 1002, why = "reserved opcode";
      else if (!c->is_client && !h.masked) code = 1002, why = "unmasked client frame";
      else if (c->is_client && h.masked) code = 1002, why = "masked server frame";
      else if (op >= 8 && (!fin || h.dlen > 125)) code = 1002, why = "invalid control frame";
      else if (op == 0 && !in_frag) code = 1002, why = "unexpected continuation frame";
      else if ((op == 1 || op == 2) && in_frag) code = 1002, why = "expected continuation frame";
      else if (op < 8 && (op == 0 ? total : 0) + h.dlen > MGPY_WS_MAX_MESSAGE)
        code = 1009, why = "message too big";
      if (code) break;
      if (h.hlen + h.dlen > c->recv.len - p) break; /* incomplete: wait for more */
      if (op < 8) {
        total = (op == 0 ? total : 0) + h.dlen;
        in_frag = !fin;
      }
      if (op == WEBSOCKET_OP_CLOSE && st->ws_state == 1) {
        close_at = p;
        break;
      }
      p += h.hlen + h.dlen;
    }
    if (code) {
      c->recv.len = p; /* deliver the good frames before the bad one */
      mgpy_mg_ws_cb(c, ev, ev_data);
      mgpy_ws_fail(c, st, code, why);
      return;
    }
    if (close_at != (size_t) -1) {
      /* the peer answered our CLOSE: deliver it, do not echo it back */
      uint8_t frame[14 + 125];
      struct mgpy_ws_hdr h;
      struct mg_ws_message m;
      size_t i;
      mgpy_ws_parse(c->recv.buf + close_at, c->recv.len - close_at, &h);
      memcpy(frame, c->recv.buf + close_at, h.hlen + h.dlen);
      c->recv.len = close_at;
      mgpy_mg_ws_cb(c, ev, ev_data);
      if (h.masked) {
        for (i = 0; i < h.dlen; i++) frame[h.hlen + i] ^= frame[h.hlen - 4 + (i & 3)];
      }
      c->recv.len = 0;
      c->pfn_data = NULL;
      st->ws_state = 2;
      c->is_draining = 1;
      m.data = mg_str_n((char *) frame + h.hlen, h.dlen);
      m.flags = h.flags;
      if (c->fn != NULL) c->fn(c, MG_EV_WS_CTL, &m);
      return;
    }
  }
  mgpy_mg_ws_cb(c, ev, ev_data);
}

static void mgpy_ws_wrap(struct mg_connection *c) {
  if (c == NULL || c->fn != mgpy_shim || c->pfn == NULL || c->pfn == mgpy_ws_guard) return;
  if (mgpy_mg_ws_cb == NULL) mgpy_mg_ws_cb = c->pfn;
  if (c->pfn == mgpy_mg_ws_cb) c->pfn = mgpy_ws_guard;
}

void mgpy_ws_close(struct mg_connection *c, const void *payload, size_t len,
                   unsigned timeout_ms) {
  struct mgpy_conn *st = c->fn == mgpy_shim ? (struct mgpy_conn *) c->fn_data : NULL;
  if (st != NULL && st->ws_state != 0) return; /* already closing */
  mg_ws_send(c, payload, len, WEBSOCKET_OP_CLOSE);
  if (st != NULL && c->pfn == mgpy_ws_guard && c->is_websocket) {
    st->ws_state = 1;
    st->ws_deadline = mg_millis() + timeout_ms;
  } else {
    c->is_draining = 1;
  }
}

void mgpy_ws_upgrade(struct mg_connection *c, struct mg_http_message *hm,
                     const char *extra_headers) {
  if (extra_headers != NULL && extra_headers[0] != '\0') {
    mg_ws_upgrade(c, hm, "%s", extra_headers);
  } else {
    mg_ws_upgrade(c, hm, NULL);
  }
  if (c->is_websocket) mgpy_ws_wrap(c);
}

