"""mongoose_py: CFFI bindings for the Mongoose embedded networking library.

>>> from mongoose_py import Manager, MG_EV_HTTP_MSG
>>> def handler(conn, ev, data):
...     if ev == MG_EV_HTTP_MSG:
...         conn.reply(200, "Hello, World!")
>>> mgr = Manager(handler)                      # doctest: +SKIP
>>> mgr.listen("http://127.0.0.1:8000")         # doctest: +SKIP
>>> mgr.run()                                   # doctest: +SKIP
"""
from __future__ import annotations

import time as _time

from ._ffi import ffi as _cffi, lib as _lib

# Before anything can log or check a certificate:
# - Mongoose's default log level is DEBUG, printed on stdout: errors only,
#   and through the "mongoose_py" logger (the trampoline must exist first);
# - the built-in TLS checks certificate dates against mg_now(), and with an
#   unset clock it tries SNTP to the internet (MONGOOSE.md §0.10).
from . import _bridge  # noqa: E402,F401  (registers the trampoline)

_lib.mg_log_level = _lib.MG_LL_ERROR
_lib.mgpy_log_init()
_lib.mg_boot_timestamp_ms = int(_time.time() * 1000) - _lib.mg_millis()

from ._bridge import EV as _EV  # noqa: E402
from ._connection import Connection  # noqa: E402
from ._http import http_parse_multipart, http_var  # noqa: E402
from ._limits import Limits  # noqa: E402
from ._manager import Manager  # noqa: E402
from ._serve import serve  # noqa: E402
from ._messages import HttpMessage, MqttMessage, WsMessage  # noqa: E402
from ._rpc import Rpc, RpcReq  # noqa: E402
from ._timer import Timer  # noqa: E402
from ._tls import TlsOpts  # noqa: E402
from ._util import (  # noqa: E402
    base64_decode, base64_encode, crc32, event_name, hmac_sha256, json_get, json_get_bool,
    json_get_long, json_get_num, json_get_str, log_get, log_set, match, md5, millis,
    random_bytes, random_str, sha1, sha256, url_encode, url_host, url_is_ssl, url_pass,
    url_port, url_uri, url_user,
)
from .aio import AsyncManager  # noqa: E402
from ._ws import (  # noqa: E402
    WEBSOCKET_OP_BINARY, WEBSOCKET_OP_CLOSE, WEBSOCKET_OP_CONTINUE, WEBSOCKET_OP_PING,
    WEBSOCKET_OP_PONG, WEBSOCKET_OP_TEXT, WS_MAX_MESSAGE,
)

__version__ = "0.1.0"
MONGOOSE_VERSION = _cffi.string(_lib.MG_VERSION).decode()

globals().update({k: v for k, v in _EV.items() if k not in ("MG_EV_MDNS_REQ", "MG_EV_MDNS_RESP", "MG_EV_MODBUS_REQ")})
MG_LL_NONE, MG_LL_ERROR, MG_LL_INFO = _lib.MG_LL_NONE, _lib.MG_LL_ERROR, _lib.MG_LL_INFO
MG_LL_DEBUG, MG_LL_VERBOSE = _lib.MG_LL_DEBUG, _lib.MG_LL_VERBOSE
MQTT_PROP_TYPE_BYTE = _lib.MQTT_PROP_TYPE_BYTE
MQTT_PROP_TYPE_STRING = _lib.MQTT_PROP_TYPE_STRING
MQTT_PROP_TYPE_STRING_PAIR = _lib.MQTT_PROP_TYPE_STRING_PAIR
MQTT_PROP_TYPE_BINARY_DATA = _lib.MQTT_PROP_TYPE_BINARY_DATA
MQTT_PROP_TYPE_VARIABLE_INT = _lib.MQTT_PROP_TYPE_VARIABLE_INT
MQTT_PROP_TYPE_INT = _lib.MQTT_PROP_TYPE_INT
MQTT_PROP_TYPE_SHORT = _lib.MQTT_PROP_TYPE_SHORT

__all__ = [
    "Manager", "AsyncManager", "serve", "Connection", "Limits", "HttpMessage", "WsMessage", "MqttMessage", "TlsOpts", "Timer", "Rpc", "RpcReq",
    "http_parse_multipart", "http_var", "base64_decode", "base64_encode", "crc32", "event_name",
    "hmac_sha256", "json_get", "json_get_bool", "json_get_long", "json_get_num", "json_get_str",
    "log_get", "log_set", "match", "md5", "millis", "random_bytes", "random_str", "sha1", "sha256",
    "url_encode", "url_host", "url_is_ssl", "url_pass", "url_port", "url_uri", "url_user",
    "WEBSOCKET_OP_TEXT", "WEBSOCKET_OP_BINARY", "WEBSOCKET_OP_PING", "WEBSOCKET_OP_PONG",
    "WEBSOCKET_OP_CLOSE", "WEBSOCKET_OP_CONTINUE", "WS_MAX_MESSAGE",
    "MG_LL_NONE", "MG_LL_ERROR", "MG_LL_INFO", "MG_LL_DEBUG", "MG_LL_VERBOSE",
    "MQTT_PROP_TYPE_BYTE", "MQTT_PROP_TYPE_STRING", "MQTT_PROP_TYPE_STRING_PAIR",
    "MQTT_PROP_TYPE_BINARY_DATA", "MQTT_PROP_TYPE_VARIABLE_INT", "MQTT_PROP_TYPE_INT",
    "MQTT_PROP_TYPE_SHORT", "MONGOOSE_VERSION",
] + [k for k in _EV if k not in ("MG_EV_MDNS_REQ", "MG_EV_MDNS_RESP", "MG_EV_MODBUS_REQ")]
