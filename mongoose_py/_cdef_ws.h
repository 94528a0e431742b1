/* cdef of _shim_ws.c (build_ffi.py appends every _cdef_*.h to _cdef.h). */
void mgpy_ws_close(struct mg_connection *c, const void *payload, size_t len, unsigned timeout_ms);
#define MGPY_WS_MAX_MESSAGE ...
void mgpy_ws_upgrade(struct mg_connection *c, struct mg_http_message *hm,
                     const char *extra_headers);
