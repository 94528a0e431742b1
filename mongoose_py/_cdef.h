/* cdef for _mongoose_cffi: what Python may see of Mongoose and of our shim.
 *
 * Rules (see STYLE.md / MONGOOSE.md):
 * - structs with bitfields are declared partial, without the bitfields; flags
 *   go through mgpy_flags()/mgpy_set_flag();
 * - no variadic Mongoose function is declared: _shim.c has fixed-format helpers;
 * - numbers come from the header ("..."), never typed in here.
 */

/* ---- constants taken from mongoose.h at build time ---- */
#define MG_MAX_HTTP_HEADERS ...
#define MG_IO_SIZE ...
#define MG_MAX_RECV_SIZE ...
#define MG_TIMER_REPEAT ...
#define MG_TIMER_RUN_NOW ...
#define WEBSOCKET_OP_CONTINUE ...
#define WEBSOCKET_OP_TEXT ...
#define WEBSOCKET_OP_BINARY ...
#define WEBSOCKET_OP_CLOSE ...
#define WEBSOCKET_OP_PING ...
#define WEBSOCKET_OP_PONG ...
#define MG_SOCK_LISTEN_BACKLOG_SIZE ...
static const char *const MG_VERSION;

enum mg_event {
  MG_EV_ERROR, MG_EV_OPEN, MG_EV_POLL, MG_EV_RESOLVE, MG_EV_CONNECT,
  MG_EV_ACCEPT, MG_EV_TLS_HS, MG_EV_READ, MG_EV_WRITE, MG_EV_CLOSE,
  MG_EV_HTTP_HDRS, MG_EV_HTTP_MSG, MG_EV_WS_OPEN, MG_EV_WS_MSG, MG_EV_WS_CTL,
  MG_EV_MQTT_CMD, MG_EV_MQTT_MSG, MG_EV_MQTT_OPEN, MG_EV_SNTP_TIME,
  MG_EV_WAKEUP, MG_EV_MDNS_REQ, MG_EV_MDNS_RESP, MG_EV_MODBUS_REQ, MG_EV_USER,
  ...
};
enum { MG_LL_NONE, MG_LL_ERROR, MG_LL_INFO, MG_LL_DEBUG, MG_LL_VERBOSE, ... };
enum {
  MQTT_PROP_TYPE_BYTE, MQTT_PROP_TYPE_STRING, MQTT_PROP_TYPE_STRING_PAIR,
  MQTT_PROP_TYPE_BINARY_DATA, MQTT_PROP_TYPE_VARIABLE_INT, MQTT_PROP_TYPE_INT,
  MQTT_PROP_TYPE_SHORT, ...
};
#define MQTT_CMD_CONNECT ...
#define MQTT_CMD_CONNACK ...
#define MQTT_CMD_PUBLISH ...
#define MQTT_CMD_PUBACK ...
#define MQTT_CMD_PUBREC ...
#define MQTT_CMD_PUBREL ...
#define MQTT_CMD_PUBCOMP ...
#define MQTT_CMD_SUBSCRIBE ...
#define MQTT_CMD_SUBACK ...
#define MQTT_CMD_UNSUBSCRIBE ...
#define MQTT_CMD_UNSUBACK ...
#define MQTT_CMD_PINGREQ ...
#define MQTT_CMD_PINGRESP ...
#define MQTT_CMD_DISCONNECT ...
#define MQTT_CMD_AUTH ...

/* ---- plain structs (no bitfields) ---- */
struct mg_str { char *buf; size_t len; };
struct mg_addr {
  union { uint8_t ip[16]; uint32_t ip4; uint64_t ip6[2]; } addr;
  uint16_t port;
  uint8_t scope_id;
  bool is_ip6;
};
struct mg_iobuf { unsigned char *buf; size_t size; size_t len; size_t align; };
struct mg_dns { const char *url; struct mg_connection *c; };

struct mg_mgr {
  struct mg_connection *conns;
  struct mg_dns dns4;
  struct mg_dns dns6;
  int dnstimeout;
  bool use_dns6;
  unsigned long nextid;
  void *userdata;
  int epoll_fd;
  ...;
};

/* Partial: the flags are bitfields, read through mgpy_flags(). */
struct mg_connection {
  struct mg_connection *next;
  struct mg_mgr *mgr;
  struct mg_addr loc;
  struct mg_addr rem;
  void *fd;
  unsigned long id;
  struct mg_iobuf recv;
  struct mg_iobuf send;
  void *fn_data;
  void *tls;
  ...;
};

struct mg_http_header { struct mg_str name; struct mg_str value; };
struct mg_http_message {
  struct mg_str method, uri, query, proto;
  struct mg_http_header headers[...];
  struct mg_str body;
  struct mg_str head;
  struct mg_str message;
};
struct mg_http_serve_opts {
  const char *root_dir;
  const char *ssi_pattern;
  const char *extra_headers;
  const char *mime_types;
  const char *page404;
  struct mg_fs *fs;
};
struct mg_http_part { struct mg_str name; struct mg_str filename; struct mg_str body; };
struct mg_ws_message { struct mg_str data; uint8_t flags; };
struct mg_tls_opts {
  struct mg_str ca;
  struct mg_str cert;
  struct mg_str key;
  struct mg_str name;
  bool skip_verification;
};
struct mg_mqtt_prop { uint8_t id; uint32_t iv; struct mg_str key; struct mg_str val; };
struct mg_mqtt_opts {
  struct mg_str user;
  struct mg_str pass;
  struct mg_str client_id;
  struct mg_str topic;
  struct mg_str message;
  uint8_t qos;
  uint8_t version;
  uint16_t keepalive;
  uint16_t retransmit_id;
  bool retain;
  bool clean;
  struct mg_mqtt_prop *props;
  size_t num_props;
  struct mg_mqtt_prop *will_props;
  size_t num_will_props;
};
struct mg_mqtt_message {
  struct mg_str topic;
  struct mg_str data;
  struct mg_str dgram;
  uint16_t id;
  uint8_t cmd;
  uint8_t qos;
  uint8_t ack;
  size_t props_start;
  size_t props_size;
};

/* ---- Mongoose functions (non-variadic only) ---- */
extern int mg_log_level;
extern uint64_t mg_boot_timestamp_ms;
uint64_t mg_millis(void);
void mg_free(void *);

void mg_mgr_init(struct mg_mgr *);
void mg_mgr_free(struct mg_mgr *);
bool mg_send(struct mg_connection *, const void *, size_t);
size_t mg_iobuf_del(struct mg_iobuf *io, size_t ofs, size_t len);
bool mg_wakeup(struct mg_mgr *, unsigned long id, const void *buf, size_t len);
bool mg_wakeup_init(struct mg_mgr *);

int mg_http_parse(const char *s, size_t len, struct mg_http_message *);
void mg_http_write_chunk(struct mg_connection *c, const char *buf, size_t len);
void mg_http_serve_dir(struct mg_connection *, struct mg_http_message *hm,
                       const struct mg_http_serve_opts *);
void mg_http_serve_file(struct mg_connection *, struct mg_http_message *hm,
                        const char *path, const struct mg_http_serve_opts *);
struct mg_str *mg_http_get_header(struct mg_http_message *, const char *name);
struct mg_str mg_http_var(struct mg_str buf, struct mg_str name);
int mg_http_get_var(const struct mg_str *, const char *name, char *, size_t);
int mg_http_status(const struct mg_http_message *hm);
struct mg_str mg_http_get_header_var(struct mg_str s, struct mg_str v);
size_t mg_http_next_multipart(struct mg_str, size_t, struct mg_http_part *);
void mg_http_bauth(struct mg_connection *, const char *user, const char *pass);
int mg_url_decode(const char *s, size_t n, char *to, size_t to_len, int form);
size_t mg_url_encode(const char *s, size_t n, char *buf, size_t len);

size_t mg_ws_send(struct mg_connection *, const void *buf, size_t len, int op);

uint16_t mg_mqtt_pub(struct mg_connection *c, const struct mg_mqtt_opts *opts);
void mg_mqtt_sub(struct mg_connection *, const struct mg_mqtt_opts *opts);
void mg_mqtt_unsub(struct mg_connection *c, const struct mg_mqtt_opts *opts);
void mg_mqtt_ping(struct mg_connection *);
void mg_mqtt_pong(struct mg_connection *);
void mg_mqtt_disconnect(struct mg_connection *, const struct mg_mqtt_opts *);
size_t mg_mqtt_next_prop(struct mg_mqtt_message *, struct mg_mqtt_prop *, size_t ofs);
int mg_mqtt_parse(const uint8_t *, size_t, uint8_t, struct mg_mqtt_message *);
void mg_mqtt_send_header(struct mg_connection *, uint8_t cmd, uint8_t flags, uint32_t len);

void mg_sntp_request(struct mg_connection *c);
void mg_resolve(struct mg_connection *, const char *url);
void mg_resolve_cancel(struct mg_connection *);
void mg_tls_init(struct mg_connection *c, const struct mg_tls_opts *opts);
void mg_tls_free(struct mg_connection *);

unsigned short mg_url_port(const char *url);
bool mg_url_is_ssl(const char *url);
struct mg_str mg_url_host(const char *url);
struct mg_str mg_url_user(const char *url);
struct mg_str mg_url_pass(const char *url);
const char *mg_url_uri(const char *url);
bool mg_match(struct mg_str str, struct mg_str pattern, struct mg_str *caps);
struct mg_str mg_json_get_tok(struct mg_str json, const char *path);
bool mg_json_get_num(struct mg_str json, const char *path, double *v);
bool mg_json_get_bool(struct mg_str json, const char *path, bool *v);
long mg_json_get_long(struct mg_str json, const char *path, long dflt);
char *mg_json_get_str(struct mg_str json, const char *path);
size_t mg_base64_encode(const unsigned char *p, size_t n, char *buf, size_t);
size_t mg_base64_decode(const char *src, size_t n, char *dst, size_t);
void mg_sha256(uint8_t dst[32], uint8_t *data, size_t datasz);
void mg_hmac_sha256(uint8_t dst[32], uint8_t *key, size_t keysz, uint8_t *data, size_t datasz);
bool mg_random(void *buf, size_t len);
char *mg_random_str(char *buf, size_t len);
uint32_t mg_crc32(uint32_t crc, const char *buf, size_t len);

/* ---- our shim (_shim.c) ---- */

/* Resource limits (mongoose_py.Limits): set from Python on a listener or a
 * client, copied into each accepted connection at MG_EV_OPEN. */
struct mgpy_limits {
  uint64_t max_head;          /* request line + headers, bytes: 431 past it */
  uint64_t max_headers;       /* header lines: 431 past it */
  uint64_t max_body;          /* buffered request body, bytes: 413 past it */
  uint64_t ws_max_message;    /* WebSocket message (all fragments), bytes: 1009 past it */
  uint64_t send_high_water;   /* stop reading while this much output is queued; 0 = off */
  uint32_t max_connections;   /* listener: accepted connections open at once; 0 = no cap */
  uint32_t head_timeout_ms;   /* request head must be complete within this; 0 = none */
  uint32_t body_timeout_ms;   /* request body must progress within this; 0 = none */
  uint32_t idle_timeout_ms;   /* keep-alive connection idle between requests; 0 = none */
};

/* Per-connection state, owned by the C connection through fn_data; the shim
 * frees it right after MG_EV_CLOSE has been dispatched. Partial: C-only
 * fields may follow the ones Python reads. */
struct mgpy_conn {
  uint32_t mask;               /* bit (1 << ev): forward ev to Python */
  void *handle;                /* ffi.new_handle(Connection); NULL until Python binds it */
  struct mgpy_conn *parent;    /* accepted child: the listener's state, during OPEN only */
  const struct mg_tls_opts *tls; /* listener/client: TLS to initialise on accept/connect */
  int tls_required;            /* TLS URL: close with an error rather than go plaintext */
  size_t high_water;           /* pause reads (stop polling in) above this recv.len; 0 = off */
  int depth;                   /* > 0 while an event of this connection is being dispatched */
  uint64_t last_rx;            /* mg_millis() of the last MG_EV_READ (keepalive checks) */
  unsigned char req_head;      /* accepted: the request being answered is HEAD */
  unsigned char req_close;     /* accepted: close once the response is complete */
  unsigned char sent_continue; /* accepted: "100 Continue" sent for this request */
  int tls_hs_pending;          /* accepted TLS connection: MG_EV_TLS_HS not yet delivered */
  int ws_state;                /* 0 open, 1 our CLOSE sent (awaiting the peer's), 2 failed/closing: input discarded */
  int ws_shut;                 /* shutdown(SHUT_WR) done while lingering */
  uint64_t ws_deadline;        /* mg_millis() after which a closing WebSocket is dropped; 0 = none */
  size_t send_mark;            /* send.len when MG_EV_HTTP_MSG was dispatched */
  int kick;                    /* deferred response done, request buffered: parse at next poll */
  struct mgpy_limits lim;      /* this connection's limits (a listener's: its children's) */
  ...;
};

/* The one trampoline into Python: connection events (c != NULL, st = its state)
 * and the binding's own synthetic events (c == NULL: timer, log line). */
extern "Python" void mgpy_dispatch(struct mg_connection *c, int ev, void *ev_data,
                                   struct mgpy_conn *st);

#define MGPY_EV_TIMER ...
#define MGPY_EV_LOG ...
#define MGPY_F_LISTENING ...
#define MGPY_F_CLIENT ...
#define MGPY_F_ACCEPTED ...
#define MGPY_F_RESOLVING ...
#define MGPY_F_CONNECTING ...
#define MGPY_F_TLS ...
#define MGPY_F_TLS_HS ...
#define MGPY_F_UDP ...
#define MGPY_F_WEBSOCKET ...
#define MGPY_F_MQTT5 ...
#define MGPY_F_HEXDUMPING ...
#define MGPY_F_DRAINING ...
#define MGPY_F_CLOSING ...
#define MGPY_F_FULL ...
#define MGPY_F_RESP ...
#define MGPY_F_READABLE ...
#define MGPY_F_WRITABLE ...

extern unsigned long mgpy_trampoline_calls;   /* test/benchmark counter */

struct mgpy_conn *mgpy_conn_new(uint32_t mask, void *handle);
void mgpy_conn_free(struct mgpy_conn *st);
unsigned mgpy_flags(struct mg_connection *c);
void mgpy_set_flag(struct mg_connection *c, unsigned flag, int on);

struct mg_connection *mgpy_listen(struct mg_mgr *mgr, const char *url, int proto,
                                  struct mgpy_conn *st);
struct mg_connection *mgpy_listen_reuse(struct mg_mgr *mgr, const char *url, int proto,
                                        struct mgpy_conn *st);
struct mg_connection *mgpy_connect(struct mg_mgr *mgr, const char *url, int proto,
                                   struct mgpy_conn *st);
struct mg_connection *mgpy_ws_connect(struct mg_mgr *mgr, const char *url,
                                      const char *extra_headers, struct mgpy_conn *st);
struct mg_connection *mgpy_mqtt_connect(struct mg_mgr *mgr, const char *url,
                                        const struct mg_mqtt_opts *opts, struct mgpy_conn *st);
struct mg_connection *mgpy_sntp_connect(struct mg_mgr *mgr, const char *url, struct mgpy_conn *st);
#define MGPY_PROTO_RAW ...
#define MGPY_PROTO_HTTP ...
#define MGPY_PROTO_MQTT ...

void mgpy_poll(struct mg_mgr *mgr, int ms);
unsigned long mgpy_doorbell_init(struct mg_mgr *mgr);
void mgpy_resume(struct mg_connection *c);
void mgpy_mgr_destroy(struct mg_mgr *mgr);
void mgpy_log_init(void);

void mgpy_http_reply(struct mg_connection *c, int code, const char *headers,
                     const void *body, size_t len, int chunked);
void mgpy_resp_done(struct mg_connection *c);
void mgpy_http_chunk(struct mg_connection *c, const void *buf, size_t len);
void mgpy_error(struct mg_connection *c, const char *msg);
void mgpy_serve(struct mg_connection *c, struct mg_http_message *hm, const char *root_or_path,
                const char *extra_headers, const char *mime_types, const char *page404,
                int is_file);
struct mg_timer *mgpy_timer_add(struct mg_mgr *mgr, uint64_t ms, unsigned flags, void *handle);
void mgpy_timer_cancel(struct mg_mgr *mgr, struct mg_timer *t);
void mgpy_md5(const void *data, size_t len, unsigned char out[16]);
void mgpy_sha1(const void *data, size_t len, unsigned char out[20]);
const char *mgpy_reason(int code);
