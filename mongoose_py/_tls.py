"""TLS options for Mongoose's built-in TLS 1.3 (no OpenSSL inside)."""
from __future__ import annotations

import os
from typing import Optional, Union

from ._ffi import ffi

PemLike = Union[str, bytes, None]


def _pem(value: PemLike) -> bytes:
    """PEM text as str/bytes, or a path to a PEM/DER file (documented)."""
    if not value:
        return b""
    if isinstance(value, str):
        if "-----BEGIN" not in value and os.path.isfile(value):
            with open(value, "rb") as f:
                return f.read()
        return value.encode("utf-8")
    if isinstance(value, bytes):
        if b"-----BEGIN" not in value and len(value) < 4096 and os.path.isfile(value):
            with open(value, "rb") as f:
                return f.read()
        return value
    raise TypeError("Expected str or bytes (PEM text or a file path), got %s" % type(value).__name__)


class TlsOpts:
    """Certificates and keys for :meth:`Connection.tls_init` or ``tls=`` of
    ``listen``/``connect``.

    Each of ``ca``, ``cert``, ``key`` is PEM text (str or bytes) or a path to a
    PEM file. ``name`` is the expected server name (SNI and hostname check).

    >>> opts = TlsOpts(cert=open("server.pem").read(), key=open("server.key").read())  # doctest: +SKIP
    >>> mgr.listen("https://0.0.0.0:8443", tls=opts)  # doctest: +SKIP
    """

    __slots__ = ("ca", "cert", "key", "name", "skip_verification")

    def __init__(self, ca: PemLike = None, cert: PemLike = None, key: PemLike = None,
                 name: PemLike = None, skip_verification: bool = False) -> None:
        self.ca = _pem(ca)
        self.cert = _pem(cert)
        self.key = _pem(key)
        self.name = name.encode("utf-8") if isinstance(name, str) else (name or b"")
        self.skip_verification = bool(skip_verification)

    def _c_opts(self):
        """``(struct mg_tls_opts *, keepalive)``: keep the second item alive for
        as long as C may read the first. Mongoose copies what it needs during
        mg_tls_init (MONGOOSE.md §1.10), but a listener reuses the struct for
        every accept, so the listener keeps both.
        """
        opts = ffi.new("struct mg_tls_opts *")
        keep = []
        for field in ("ca", "cert", "key", "name"):
            value = getattr(self, field)
            if not isinstance(value, bytes):
                raise TypeError("TlsOpts.%s must be bytes, got %s" % (field, type(value).__name__))
            if value:
                buf = ffi.new("char[]", value)
                keep.append(buf)
                getattr(opts, field).buf = buf
                getattr(opts, field).len = len(value)
        opts.skip_verification = self.skip_verification
        return opts, keep

    def __reduce__(self):
        return (TlsOpts, (self.ca, self.cert, self.key, self.name, self.skip_verification))

    def __repr__(self) -> str:
        return "TlsOpts(ca=%s, cert=%s, key=%s, name=%r, skip_verification=%r)" % (
            bool(self.ca), bool(self.cert), "***" if self.key else None, self.name, self.skip_verification)

