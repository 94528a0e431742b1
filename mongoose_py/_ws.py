"""WebSocket on a connection: upgrade, send, close.

Receiving (Mongoose + the shim's guard, ``_shim.c`` "WebSocket"):

- ``MG_EV_WS_MSG`` gets each complete TEXT/BINARY message; fragmented
  messages arrive reassembled, as one message.
- ``MG_EV_WS_CTL`` gets PING, PONG and CLOSE frames (``msg.opcode``,
  ``msg.close_code``, ``msg.close_reason``); PINGs are answered with a PONG
  automatically. Mongoose also reports each continuation frame here (opcode 0).
- A CLOSE from the peer is answered with a CLOSE echoing its code, then the
  connection closes once that is sent.
- Protocol errors (reserved bits or opcodes, an unmasked frame from a
  client, a masked frame from a server, a fragmented or oversized control
  frame, broken fragment sequences) close with 1002, and a message larger
  than :data:`WS_MAX_MESSAGE` (Mongoose's receive cap, 3 MiB, less 16 bytes)
  with 1009: the CLOSE frame is sent before the connection goes, and the
  handler gets ``MG_EV_ERROR`` saying why.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

from ._ffi import header_block, lib, reentrant, to_bytes
from ._threads import call_on_loop, get_ident, on_loop

WEBSOCKET_OP_CONTINUE = lib.WEBSOCKET_OP_CONTINUE
WEBSOCKET_OP_TEXT = lib.WEBSOCKET_OP_TEXT
WEBSOCKET_OP_BINARY = lib.WEBSOCKET_OP_BINARY
WEBSOCKET_OP_CLOSE = lib.WEBSOCKET_OP_CLOSE
WEBSOCKET_OP_PING = lib.WEBSOCKET_OP_PING
WEBSOCKET_OP_PONG = lib.WEBSOCKET_OP_PONG

#: Largest message (payload bytes, all fragments together) a connection accepts.
WS_MAX_MESSAGE = getattr(lib, "MGPY_WS_MAX_MESSAGE", 3 * 1024 * 1024 - 16)

_HAS_CLOSE = hasattr(lib, "mgpy_ws_close")
# Close codes an endpoint may send (RFC 6455 §7.4): 1000-1003, 1007-1011, 1012-1014, 3000-4999.
_SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def close_payload(code: int = 1000, reason: Union[str, bytes] = "") -> bytes:
    """The payload of a CLOSE frame; checks the code and the 123-byte reason limit."""
    code = int(code)
    if code not in _SENDABLE and not 3000 <= code <= 4999:
        raise ValueError("WebSocket close code %d may not be sent (RFC 6455 §7.4)" % code)
    r = to_bytes(reason)
    if len(r) > 123:
        raise ValueError("WebSocket close reason is limited to 123 bytes (got %d)" % len(r))
    return code.to_bytes(2, "big") + r


class WsMethods:
    """Mixed into :class:`Connection`."""

    __slots__ = ()

    @on_loop
    def ws_upgrade(self, message, extra_headers: Optional[Dict[str, str]] = None) -> None:
        """Answer this HTTP request with a WebSocket upgrade (call in MG_EV_HTTP_MSG).
        Header names and values are checked for CR/LF/NUL (``ValueError``).

        >>> def on_http_msg(self, msg):
        ...     self.ws_upgrade(msg, {"Sec-WebSocket-Protocol": "chat"})
        """
        from ._http import _live
        c = self._require()
        hm = _live(message)
        block = header_block(extra_headers).encode("utf-8")  # validates before anything is sent
        reentrant.mgpy_ws_upgrade(c, hm, block)

    def ws_send(self, data: Union[str, bytes], op: int = WEBSOCKET_OP_TEXT) -> int:
        """Send one WebSocket frame (binary-safe; str is UTF-8). Returns the bytes queued.

        ``op`` is one of the ``WEBSOCKET_OP_*`` constants; for a CLOSE frame
        prefer :meth:`ws_close`, which also waits for the peer's answer.

        >>> def on_ws_msg(self, msg):
        ...     self.ws_send(msg.data, msg.opcode)  # echo
        """
        # The per-message hot path: the thread contract's check (see on_loop)
        # is inlined rather than paid as a wrapper frame.
        mgr = self._mgr
        if mgr is not None and mgr._owner != get_ident():
            return call_on_loop(mgr, WsMethods.ws_send, (self, data, op), {})
        c = self._c
        if c is None:
            raise RuntimeError("Connection has been closed")
        b = data if type(data) is bytes else to_bytes(data)
        if type(op) is not int:
            op = int(op)
        if not 0 <= op <= 15:
            raise ValueError("WebSocket opcode must be 0..15, got %d" % op)
        if op >= 8 and len(b) > 125:
            raise ValueError("WebSocket control frames carry at most 125 bytes (got %d)" % len(b))
        return lib.mg_ws_send(c, b, len(b), op)

    def ws_close(self, code: int = 1000, reason: Union[str, bytes] = "", timeout: float = 2.0) -> None:
        """Start the closing handshake: send CLOSE(``code``, ``reason``), deliver
        the peer's CLOSE as MG_EV_WS_CTL when it comes, then close the
        connection (at the latest after ``timeout`` seconds). Idempotent."""
        payload = close_payload(code, reason)
        self._ws_close(payload, max(1, int(timeout * 1000)))

    @on_loop
    def _ws_close(self, payload: bytes, timeout_ms: int) -> None:
        c = self._c
        if c is None:
            return
        if _HAS_CLOSE:
            lib.mgpy_ws_close(c, payload, len(payload), timeout_ms)
        else:  # older shim: send and drain (no wait for the peer's CLOSE)
            lib.mg_ws_send(c, payload, len(payload), WEBSOCKET_OP_CLOSE)
            lib.mgpy_set_flag(c, lib.MGPY_F_DRAINING, 1)
