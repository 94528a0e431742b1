"""HTTP on a connection: replies, static files, chunked and SSE streams."""
from __future__ import annotations

import json as _json
import os
from typing import Dict, Optional, Tuple, Union

from ._ffi import NULL, cstr, ffi, header_block, lib, mg_str_bytes, mg_str_of, mg_str_text, to_bytes
from ._messages import HttpMessage
from ._threads import call_on_loop, get_ident, on_loop

Headers = Optional[Dict[str, str]]
_PLAIN = b"Content-Type: text/plain\r\n"
_INDEX_FILES = ("index.html", "index.shtml", "index.html.gz")


def _raw_header_lines(extra) -> bytes:
    """serve_dir/serve_file extra headers: a dict, or raw "A: b\\r\\n" lines."""
    if isinstance(extra, dict):
        return cstr(header_block(extra))
    text = extra or ""
    for line in text.split("\r\n"):
        if "\n" in line or "\r" in line or "\0" in line:
            raise ValueError("extra_headers must be 'Name: value\\r\\n' lines: %r" % text)
    if text and not text.endswith("\r\n"):
        text += "\r\n"
    return cstr(text)


def _live(message) -> object:
    if not isinstance(message, HttpMessage) or not message:
        raise ValueError("HttpMessage is not valid for this event")
    return message._p


class HttpMethods:
    """Mixed into :class:`Connection`."""

    __slots__ = ()

    def reply(self, status_code: int, body: Union[str, bytes] = b"", headers: Headers = None) -> None:
        """Send a complete response: binary-safe body, exact ``Content-Length``.

        >>> conn.reply(200, b"\\x00binary", {"Content-Type": "application/octet-stream"})  # doctest: +SKIP

        ``Content-Type: text/plain`` is added unless given. With
        ``{"Transfer-Encoding": "chunked"}`` the headers go out without a
        Content-Length and the body (if any) as the first chunk; continue with
        :meth:`http_chunk` and end with ``http_chunk(b"")``.
        """
        mgr = self._mgr  # the thread contract (see on_loop), inlined: this is the per-request path
        if mgr is not None and mgr._owner != get_ident():
            return call_on_loop(mgr, HttpMethods.reply, (self, status_code, body, headers), {})
        c = self._c
        if c is None:
            raise RuntimeError("Connection has been closed")
        data = body if type(body) is bytes else to_bytes(body)
        if not headers:  # the common case, kept short
            lib.mgpy_http_reply(c, status_code, _PLAIN, data, len(data), 0)
            return
        chunked = False
        has_type = False
        if headers:
            headers = dict(headers)
            for k in list(headers):
                lk = str(k).lower()
                if lk == "content-length":
                    del headers[k]  # we always send the exact length
                elif lk == "content-type":
                    has_type = True
                elif lk == "transfer-encoding" and "chunked" in str(headers[k]).lower():
                    chunked = True
        block = header_block(headers)
        if not has_type:
            block = "Content-Type: text/plain\r\n" + block
        lib.mgpy_http_reply(c, int(status_code), block.encode("utf-8"), data, len(data), 1 if chunked else 0)
        if chunked and data:
            lib.mgpy_http_chunk(c, data, len(data))

    def reply_json(self, data, status_code: int = 200, headers: Headers = None) -> None:
        """``reply()`` with ``json.dumps(data)`` and ``Content-Type: application/json``."""
        h = {k: v for k, v in (headers or {}).items() if str(k).lower() != "content-type"}
        h["Content-Type"] = "application/json"
        self.reply(status_code, _json.dumps(data), h)

    @on_loop
    def serve_dir(self, message: HttpMessage, root_dir: str, extra_headers="", mime_types: str = "",
                  page404: str = "", *, dir_listing: bool = True) -> None:
        """Serve files under ``root_dir`` for this request (ranges, ETag, 304,
        ``../`` and ``%2e%2e`` refused by Mongoose). ``dir_listing=False``
        answers 403 for directories without an index file."""
        c = self._require()
        hm = _live(message)
        if not dir_listing and _is_unindexed_dir(root_dir, mg_str_text(hm.uri)):
            lib.mgpy_http_reply(c, 403, b"Content-Type: text/plain\r\n", b"Forbidden\n", 10, 0)
            return
        lib.mgpy_serve(c, hm, cstr(root_dir), _raw_header_lines(extra_headers), cstr(mime_types or ""),
                       cstr(page404 or ""), 0)

    @on_loop
    def serve_file(self, message: HttpMessage, path: str, extra_headers="", mime_types: str = "") -> None:
        """Serve one file (the request URI is ignored): ranges, ETag, HEAD."""
        c = self._require()
        lib.mgpy_serve(c, _live(message), cstr(path), _raw_header_lines(extra_headers),
                       cstr(mime_types or ""), b"", 1)

    @on_loop
    def http_chunk(self, data: Union[str, bytes]) -> None:
        """Send one chunk of a chunked response; empty data ends the response."""
        c = self._require()
        b = to_bytes(data)
        lib.mgpy_http_chunk(c, b, len(b))

    @on_loop
    def http_sse(self, event_type: str, data: str) -> None:
        """Send one Server-Sent Event as one HTTP chunk. Lines of ``data``
        become separate ``data:`` lines (the SSE wire format)."""
        c = self._require()
        ev = str(event_type)
        if "\n" in ev or "\r" in ev:
            raise ValueError("SSE event type must be a single line: %r" % ev)
        text = str(data).replace("\r\n", "\n").replace("\r", "\n")
        frame = ("event: %s\n" % ev if ev else "") + "".join("data: %s\n" % line for line in text.split("\n")) + "\n"
        b = frame.encode("utf-8")
        lib.mg_http_write_chunk(c, b, len(b))

    @on_loop
    def http_basic_auth(self, username: str, password: str) -> None:
        """Client side: append an ``Authorization: Basic ...`` header line to the request being written."""
        lib.mg_http_bauth(self._require(), cstr(username), cstr(password))


def _is_unindexed_dir(root_dir: str, uri: str) -> bool:
    """Would Mongoose list this directory? Mirrors uri_to_path() (mongoose.c):
    root_dir is "dir" or a list "dir,/prefix=dir2,..." where the last matching
    prefix wins; the URL-decoded rest of the URI is appended. A path Mongoose
    refuses (mg_path_is_sane: 400) is left to Mongoose: never stat it."""
    from urllib.parse import unquote
    prefix, base = "/", None
    for part in root_dir.split(","):
        if not part:
            continue
        k, sep, v = part.partition("=")
        if not sep or not v:
            k, v = "/", k
            prefix, base = k, v
        if uri.startswith(k):
            prefix, base = k, v
    if base is None:
        return False
    path = base if base.endswith("/") else base + "/"
    path += unquote(uri[len(prefix):], errors="surrogateescape")
    if path.startswith(("~", "..")) or "/.." in path or "\\.." in path or "\0" in path:
        return False
    if not os.path.isdir(path):
        return False
    return not any(os.path.exists(os.path.join(path, name)) for name in _INDEX_FILES)


def http_var(buf, name: str) -> Optional[str]:
    """Raw (not URL-decoded) value of ``name`` in a form/query string, or ``None``."""
    src, keep1 = mg_str_of(to_bytes(buf))
    nm, keep2 = mg_str_of(to_bytes(name))
    r = lib.mg_http_var(src, nm)
    if r.buf == NULL:
        return None
    return mg_str_text(r)


def http_parse_multipart(body, offset: int = 0) -> Tuple[int, Optional[Dict[str, Union[str, bytes]]]]:
    """Next part of a multipart body: ``(next_offset, {"name", "filename", "body"})``
    or ``(0, None)`` when there are no more parts."""
    b = to_bytes(body)
    if offset < 0 or offset > len(b):
        return 0, None
    src, keep = mg_str_of(b)
    part = ffi.new("struct mg_http_part *")
    ofs = lib.mg_http_next_multipart(src, offset, part)
    if ofs == 0:
        return 0, None
    return ofs, {"name": mg_str_text(part.name), "filename": mg_str_text(part.filename),
                 "body": mg_str_bytes(part.body)}
