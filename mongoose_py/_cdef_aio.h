/* cdef of _shim_aio.c: the native asyncio driver (aio.py). */
int mgpy_aio_arm(struct mg_mgr *mgr, int tick_ms, long *next_ms);
