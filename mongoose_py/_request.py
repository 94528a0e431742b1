"""The request line and headers of an HTTP message, read in one piece.

The adapters need every header of every request; reading them field by field
through cffi costs several C-level accesses per header. Here the raw head is
copied once and split in Python. Lines end at LF (a CR before it is dropped);
a bare CR stays inside its line, as Mongoose's parser sees it, so both layers
agree on where a header starts.
"""
from __future__ import annotations

from typing import List, Tuple

from ._ffi import ffi

_unpack = ffi.unpack
_char_p = ffi.typeof("char *")
_cast = ffi.cast


def read_head(msg) -> Tuple[bytes, bytes, bytes, bytes, List[Tuple[bytes, bytes]]]:
    """``(method, path, query, proto, [(lowercased name, value), ...])`` as bytes."""
    hm = msg._ptr()
    head = _unpack(_cast(_char_p, hm.head.buf), hm.head.len)
    lines = head.split(b"\n")
    first = lines[0].rstrip(b"\r").split(b" ")
    method = first[0]
    target = first[1] if len(first) > 1 else b"/"
    proto = first[2] if len(first) > 2 else b"HTTP/1.0"
    path, _, query = target.partition(b"?")
    headers = []
    append = headers.append
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            append((name.strip().lower(), value.strip()))
    return method, path, query, proto, headers
