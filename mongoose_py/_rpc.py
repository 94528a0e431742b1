"""JSON-RPC 2.0 dispatch with the semantics of Mongoose's ``mg_rpc_*``.

Written in Python (the ``json`` module does the parsing, :func:`match` the
method patterns) rather than over ``mg_rpc_process``: Mongoose's version needs
a variadic printf-style API that cffi cannot call safely, and splices the
method name unescaped into its error messages.

>>> rpc = Rpc()
>>> rpc.add("sum", lambda req: req.ok(json.dumps(sum(req.params))))
>>> rpc.process('{"id": 1, "method": "sum", "params": [1, 2, 3]}')
'{"id":1,"result":6}'

What Mongoose does, and so do we:

* methods are Mongoose glob patterns (``?``, ``*``, ``#``), tried newest
  first: ``add("a*", ...)`` after ``add("add", ...)`` takes ``"add"``;
* a frame that is not a JSON object with a string ``method`` gets ``-32700``
  with the frame itself as the message (``"not json"`` for ``not json``);
  a response frame (``result`` or ``error`` and no ``method``) goes to the
  handler registered for ``""``;
* an unknown method gets ``-32601`` ``"<method> not found"``;
* ``req.ok(result_json)`` inserts ``result_json`` as raw JSON;
  ``req.err(code, message)`` JSON-encodes ``message``;
* a handler that returns without responding gets ``-32603``
  ``"handler produced no response"``; one that raises, ``-32603`` with
  ``str(exception)``.

Deliberate differences: a notification (a request without ``id``) never gets
a response (JSON-RPC 2.0 §4.1), also when it fails, and neither does a
response frame; Mongoose answers both with error objects when no handler
responds.

An :class:`RpcReq` is valid only while its handler runs (the rule of all
message views): used later it raises ``RuntimeError`` and ``bool(req)`` is
False; ``req.copy()`` keeps the request data (but cannot respond).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._util import match

log = logging.getLogger("mongoose_py")

RpcHandler = Callable[["RpcReq"], Any]
_STALE = ("RpcReq is no longer valid: it was used after its handler returned. "
          "Respond inside the handler; call req.copy() to keep the request data.")
_COPY = "RpcReq.copy() is a snapshot of the request: it cannot send a response"
_MISSING = object()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RpcReq:
    """One JSON-RPC request, handed to the handler registered with :meth:`Rpc.add`.

    >>> def add(req):
    ...     a, b = req.params
    ...     req.ok(json.dumps(a + b))
    """

    __slots__ = ("_frame", "_obj", "_out", "_live", "_snapshot")

    def __init__(self, frame: str = "", obj: Optional[Dict[str, Any]] = None, *, _live: bool = False,
                 _snapshot: bool = False) -> None:
        # Made by Rpc.process (live) or copy() (snapshot); one made by hand is
        # like a view after its callback: unusable.
        self._frame = frame
        self._obj = obj if obj is not None else {}
        self._out: Optional[str] = None  # the response JSON once ok()/err() ran
        self._live = _live
        self._snapshot = _snapshot

    def _check(self) -> None:
        if not self._live:
            raise RuntimeError(_COPY if self._snapshot else _STALE)

    def __bool__(self) -> bool:
        return self._live or self._snapshot

    # ---- the request ----

    @property
    def frame(self) -> str:
        """The raw request frame (JSON text)."""
        if not (self._live or self._snapshot):
            raise RuntimeError(_STALE)
        return self._frame

    @property
    def method(self) -> str:
        if not (self._live or self._snapshot):
            raise RuntimeError(_STALE)
        m = self._obj.get("method", "")
        return m if isinstance(m, str) else ""

    @property
    def params(self) -> Any:
        """The decoded ``params`` member (``None`` if absent)."""
        if not (self._live or self._snapshot):
            raise RuntimeError(_STALE)
        return self._obj.get("params")

    @property
    def id(self) -> Any:
        """The decoded ``id`` (``None`` for a notification)."""
        if not (self._live or self._snapshot):
            raise RuntimeError(_STALE)
        return self._obj.get("id")

    @property
    def is_notification(self) -> bool:
        if not (self._live or self._snapshot):
            raise RuntimeError(_STALE)
        return "id" not in self._obj

    def copy(self) -> "RpcReq":
        """An owned snapshot of the request, usable after the handler returned."""
        if not (self._live or self._snapshot):
            raise RuntimeError(_STALE)
        return RpcReq(self._frame, self._obj, _snapshot=True)

    # ---- the response ----

    def ok(self, result_json: Union[str, bytes]) -> None:
        """Respond with ``result_json`` (raw JSON text, e.g. ``'42'``, ``'"hi"'``, ``'[1,2]'``)."""
        self._check()
        if self._out is not None:
            raise RuntimeError("Response already sent")
        if isinstance(result_json, (bytes, bytearray, memoryview)):
            result_json = bytes(result_json).decode("utf-8", "surrogateescape")
        elif not isinstance(result_json, str):
            raise TypeError("ok() takes the result as JSON text (str), got %s: "
                            "use json.dumps(value)" % type(result_json).__name__)
        self._out = _response(self._obj, '"result":' + result_json)

    def err(self, code: int, message: str) -> None:
        """Respond with error ``code`` and ``message`` (JSON-encoded for you)."""
        self._check()
        if self._out is not None:
            raise RuntimeError("Response already sent")
        self._out = _error(self._obj, int(code), json.dumps(message))

    def __repr__(self) -> str:
        state = "live" if self._live else ("copy" if self._snapshot else "stale")
        return "<RpcReq %s %s>" % (state, self._frame[:60])


def _response(obj: Dict[str, Any], body: str) -> str:
    if "id" not in obj:
        return ""  # a notification: no response (JSON-RPC 2.0 §4.1)
    return '{"id":%s,%s}' % (_dumps(obj["id"]), body)


def _error(obj: Optional[Dict[str, Any]], code: int, message_json: str) -> str:
    body = '"error":{"code":%d,"message":%s}' % (code, message_json)
    if obj is None:  # unparsable frame: no id to echo
        return "{%s}" % body
    return _response(obj, body)


class Rpc:
    """A JSON-RPC method table.

    >>> rpc = Rpc()
    >>> rpc.add("echo", lambda req: req.ok(json.dumps(req.params)))
    >>> rpc.process('{"id":7,"method":"echo","params":[1,"a"]}')
    '{"id":7,"result":[1, "a"]}'
    """

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: List[Tuple[str, RpcHandler]] = []  # newest first, like mg_rpc_add's list

    def add(self, method: str, handler: RpcHandler) -> None:
        """Register ``handler(req)`` for the Mongoose glob ``method``; the
        newest registration that matches wins."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._handlers.insert(0, (str(method), handler))

    @property
    def methods(self) -> List[str]:
        """Registered patterns, newest first."""
        return [m for m, _ in self._handlers if m]

    def _find(self, method: str) -> Optional[RpcHandler]:
        for pattern, handler in self._handlers:
            if match(method, pattern)[0]:
                return handler
        return None

    def process(self, frame: Union[str, bytes]) -> str:
        """Handle one request frame; returns the response JSON (``""`` for a
        notification)."""
        if isinstance(frame, str):
            text = frame
        else:
            text = bytes(frame).decode("utf-8", "surrogateescape")
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            return _error(None, -32700, json.dumps(text))
        method = obj.get("method", _MISSING)
        is_response = False
        if not isinstance(method, str):
            if method is _MISSING and ("result" in obj or "error" in obj):
                method, is_response = "", True  # a response to one of our calls: the "" handler
            else:
                return _error(obj if "id" in obj else None, -32700, json.dumps(text))
        handler = self._find(method)
        if handler is None:
            return "" if is_response else _error(obj, -32601, json.dumps("%s not found" % method))
        req = RpcReq(text, obj, _live=True)
        try:
            handler(req)
        except Exception as exc:  # noqa: BLE001 - becomes the JSON-RPC error
            if req._out is None:
                log.debug("RPC handler for %r raised", method, exc_info=True)
                req._out = _error(obj, -32603, json.dumps(str(exc)))
        finally:
            req._live = False
        if is_response:
            return ""  # a response is never answered
        if req._out is None:
            return _error(obj, -32603, json.dumps("handler produced no response"))
        return req._out

    def __repr__(self) -> str:
        return "<Rpc methods=%r>" % (self.methods,)
