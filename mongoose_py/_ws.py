"""WebSocket on a connection: upgrade and send."""
from __future__ import annotations

from typing import Dict, Optional, Union

from ._ffi import header_block, lib, to_bytes
from ._threads import on_loop

WEBSOCKET_OP_CONTINUE = lib.WEBSOCKET_OP_CONTINUE
WEBSOCKET_OP_TEXT = lib.WEBSOCKET_OP_TEXT
WEBSOCKET_OP_BINARY = lib.WEBSOCKET_OP_BINARY
WEBSOCKET_OP_CLOSE = lib.WEBSOCKET_OP_CLOSE
WEBSOCKET_OP_PING = lib.WEBSOCKET_OP_PING
WEBSOCKET_OP_PONG = lib.WEBSOCKET_OP_PONG


class WsMethods:
    """Mixed into :class:`Connection`."""

    __slots__ = ()

    @on_loop
    def ws_upgrade(self, message, extra_headers: Optional[Dict[str, str]] = None) -> None:
        """Answer this HTTP request with a WebSocket upgrade (call in MG_EV_HTTP_MSG).

        >>> def on_http_msg(self, msg):
        ...     self.ws_upgrade(msg, {"Sec-WebSocket-Protocol": "chat"})
        """
        from ._http import _live
        c = self._require()
        hm = _live(message)
        lib.mgpy_ws_upgrade(c, hm, header_block(extra_headers).encode("utf-8"))

    @on_loop
    def ws_send(self, data: Union[str, bytes], op: int = WEBSOCKET_OP_TEXT) -> int:
        """Send one WebSocket frame (binary-safe). Returns the bytes queued."""
        c = self._require()
        b = to_bytes(data)
        return lib.mg_ws_send(c, b, len(b), int(op))

    def ws_close(self, code: int = 1000, reason: str = "") -> None:
        """Send a CLOSE frame with ``code`` and ``reason``, then drain."""
        payload = int(code).to_bytes(2, "big") + reason.encode("utf-8")
        self.ws_send(payload, WEBSOCKET_OP_CLOSE)
        self.drain()
