/* Mongoose, compiled as one unit with one redirection: its listener bind()
 * goes through mgpy_bind (in _shim.c), which can set SO_REUSEPORT first.
 * Mongoose has no hook between socket() and bind() (MONGOOSE.md §4). */
#include <sys/types.h>
#include <sys/socket.h>
int mgpy_bind(int fd, const struct sockaddr *addr, socklen_t len);
#define bind mgpy_bind
#include "mongoose.c"
