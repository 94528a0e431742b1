/* Native asyncio mode (mongoose_py/aio.py): the asyncio loop watches the
 * manager's epoll fd and runs one mgpy_poll(mgr, 0) per readiness or timer.
 * Between those passes nothing waits inside Mongoose, so what mg_iotest()
 * would prepare before its wait is done here, after each pass:
 *  - connections with output queued (a reply made by a coroutine, a chunk...)
 *    get EPOLLOUT registered, so that the epoll fd turns readable once the
 *    socket can take it (Mongoose only registers it at its next iotest);
 *  - paused connections (is_full) stay out of EPOLLIN (see mgpy_poll), or the
 *    epoll fd would stay readable forever: a busy loop;
 *  - work that needs a pass without any readiness is reported (return 1):
 *    closing/drained connections, TLS records already decrypted or buffered,
 *    a pipelined request kicked by mgpy_resp_done;
 *  - *next_ms: milliseconds until the earliest timer, or until the next
 *    housekeeping pass (tick_ms) when a connection relies on MG_EV_POLL
 *    (DNS timeouts, a closing WebSocket's deadline, a user on_poll hook),
 *    or within MGPY_AIO_LIMITS_MS when a connection has a time limit
 *    (Limits: head/body/idle timeouts are checked as the loop passes);
 *    -1 when nothing is due. */
#define MGPY_AIO_LIMITS_MS 1000
int mgpy_aio_arm(struct mg_mgr *mgr, int tick_ms, long *next_ms) {
  struct mg_connection *c;
  struct mg_timer *t;
  uint64_t now = mg_millis();
  long next = -1;
  int now_needed = 0, tick = 0, timed = 0;
  for (c = mgr->conns; c != NULL; c = c->next) {
    struct mgpy_conn *st = c->fn == mgpy_shim ? (struct mgpy_conn *) c->fn_data : NULL;
    if (c->is_closing || (c->is_draining && c->send.len == 0)) now_needed = 1;
    if (st != NULL && st->kick) now_needed = 1;
    if (!c->is_full && (c->rtls.len > 0 || mg_tls_pending(c) > 0)) now_needed = 1;
    if (c->is_resolving || (st != NULL && (st->ws_deadline || (st->mask & (1u << MG_EV_POLL))))) tick = 1;
    if (st != NULL && !c->is_listening &&
        (st->lim.head_timeout_ms || st->lim.body_timeout_ms || st->lim.idle_timeout_ms)) timed = 1;
#if MG_ENABLE_EPOLL
    if (c->fd != NULL && !c->is_listening && !c->is_closing && !c->is_resolving) {
      int out = c->is_connecting || (c->send.len > 0 && !c->is_tls_hs);
      if (c->is_full) {
        struct epoll_event ev = {EPOLLERR | EPOLLHUP, {c}};
        if (out) ev.events |= EPOLLOUT;
        epoll_ctl(mgr->epoll_fd, EPOLL_CTL_MOD, (int) (size_t) c->fd, &ev);
      } else if (out) {
        struct epoll_event ev = {EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP, {c}};
        epoll_ctl(mgr->epoll_fd, EPOLL_CTL_MOD, (int) (size_t) c->fd, &ev);
      }
    }
#endif
  }
  for (t = mgr->timers; t != NULL; t = t->next) {
    long left = (t->expire == 0 || t->expire <= now) ? 0 : (long) (t->expire - now);
    if (next < 0 || left < next) next = left;
  }
  if (tick && (next < 0 || next > tick_ms)) next = tick_ms;
  if (timed && (next < 0 || next > MGPY_AIO_LIMITS_MS)) next = MGPY_AIO_LIMITS_MS;
  *next_ms = next;
  return now_needed;
}
