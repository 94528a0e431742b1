/* Mongoose, compiled as one unit with one redirection: its listener bind()
 * goes through mgpy_bind (in _shim.c), which can set SO_REUSEPORT first.
 * Mongoose has no hook between socket() and bind() (MONGOOSE.md §4). */
#include <sys/types.h>
#include <sys/socket.h>
int mgpy_bind(int fd, const struct sockaddr *addr, socklen_t len);
#define bind mgpy_bind
#include "mongoose.c"

/* Mongoose accepts one connection per listener per loop iteration
 * (accept_conn is static, hence here). An iteration that runs Python is
 * slower than one in C, so a burst of thousands of clients waited in the
 * kernel queue for seconds (timeouts at wrk -c2000). After each iteration we
 * accept what is already pending, up to 256 per listener. */
#include <poll.h>
void mgpy_accept_pending(struct mg_mgr *mgr) {
  struct mg_connection *c;
  for (c = mgr->conns; c != NULL; c = c->next) {
    int i;
    if (!c->is_listening || c->is_udp || c->fd == NULL || c->is_closing) continue;
    for (i = 0; i < 256; i++) {
      struct pollfd p;
      p.fd = (int) (size_t) c->fd, p.events = POLLIN, p.revents = 0;
      if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) break;
      accept_conn(mgr, c);
    }
  }
}
