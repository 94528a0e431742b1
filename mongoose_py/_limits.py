"""``Limits``: the resource limits of a listener or a client connection.

Every limit has a safe default, so a server that never mentions ``Limits`` is
still protected; pass your own to widen or narrow them::

    mgr.listen("http://0.0.0.0:8000", limits=Limits(max_body=64 << 20, idle_timeout=30))

A listener's limits are copied into every connection it accepts; they live in
the connection's C state (``struct mgpy_limits``), where the shim enforces them
without a call into Python.
"""
from __future__ import annotations

from typing import Any

_MIB = 1 << 20

# name -> (default, C field, scale to the C unit). Timeouts are seconds in
# Python, milliseconds in C.
_FIELDS = {
    "max_connections": (10000, "max_connections", None),
    "max_head": (16 * 1024, "max_head", None),
    "max_headers": (100, "max_headers", None),
    "max_body": (8 * _MIB, "max_body", None),
    "head_timeout": (30.0, "head_timeout_ms", 1000),
    "body_timeout": (60.0, "body_timeout_ms", 1000),
    "idle_timeout": (75.0, "idle_timeout_ms", 1000),
    "ws_max_message": (64 * _MIB, "ws_max_message", None),
    "send_high_water": (4 * _MIB, "send_high_water", None),
}


class Limits:
    """Resource limits; a listener's are inherited by the connections it accepts.

    - ``max_connections``: connections a listener keeps open at once (more wait
      in the kernel's backlog); 0 = no cap.
    - ``max_head``: bytes of request line and headers (431 past it).
    - ``max_headers``: header lines in a request (431 past it).
    - ``max_body``: request body buffered for ``on_http_msg`` (413 past it,
      decided from the head); a connection that streams its request bodies
      (``on_http_body``) has no such cap.
    - ``head_timeout`` / ``body_timeout`` / ``idle_timeout``: seconds to receive a
      complete request head, between two pieces of a request body, and of
      silence on a keep-alive connection between requests; 0 = none.
    - ``ws_max_message``: bytes of a WebSocket message, all fragments (1009
      past it).
    - ``send_high_water``: stop reading from a peer while this many bytes wait
      to be sent to it (a peer that sends but never reads cannot grow us); 0 = off.

    >>> Limits(max_body=1 << 30).replace(head_timeout=10).max_body == 1 << 30
    True
    """

    __slots__ = tuple(_FIELDS)

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(_FIELDS)
        if unknown:
            raise TypeError("Limits() got unknown limits %s (known: %s)"
                            % (", ".join(sorted(unknown)), ", ".join(_FIELDS)))
        for name, (default, _, _) in _FIELDS.items():
            value = values.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError("Limits.%s must be a number >= 0, got %r" % (name, value))
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Limits are immutable: use limits.replace(%s=...)" % name)

    def replace(self, **changes: Any) -> "Limits":
        """A copy with some limits changed."""
        values = {name: getattr(self, name) for name in _FIELDS}
        values.update(changes)
        return Limits(**values)

    def _apply(self, st: Any) -> None:
        """Write into a ``struct mgpy_conn *`` (on the loop thread)."""
        lim = st.lim
        for name, (_, field, scale) in _FIELDS.items():
            value = getattr(self, name)
            setattr(lim, field, int(value * scale) if scale else int(value))

    @classmethod
    def _read(cls, st: Any) -> "Limits":
        lim = st.lim
        values = {}
        for name, (default, field, scale) in _FIELDS.items():
            raw = getattr(lim, field)
            values[name] = raw / scale if scale else raw
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and all(getattr(self, n) == getattr(other, n) for n in _FIELDS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _FIELDS))

    def __repr__(self) -> str:
        return "Limits(%s)" % ", ".join("%s=%r" % (n, getattr(self, n)) for n in _FIELDS)


DEFAULT_LIMITS = Limits()
