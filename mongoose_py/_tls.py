"""TLS options for Mongoose's built-in TLS 1.3 (no OpenSSL inside).

What the built-in TLS (``MG_TLS_BUILTIN``, Mongoose 7.23) accepts, and what
:class:`TlsOpts` therefore checks before any connection is made:

- Protocol: TLS 1.3 only, one cipher suite (``TLS_CHACHA20_POLY1305_SHA256``),
  key exchange x25519 only, no ALPN, no session resumption. Peers that only
  speak TLS 1.2 cannot connect.
- Private key (``key``): EC **P-256** only (``EC PRIVATE KEY`` or unencrypted
  PKCS#8 ``PRIVATE KEY``). Mongoose 7.23 parses RSA keys too, but its RSA-CRT
  signature fails for every key size (measured with 2048/3072/4096-bit keys:
  "CRT signing failed", the handshake dies), so RSA private keys are rejected
  here, like encrypted keys, other curves (P-384, P-521, secp256k1...),
  Ed25519/Ed448 and DSA: ``ValueError`` naming what is accepted.
- Own certificate (``cert``): its public key must be P-256 (matching ``key``);
  a chain (leaf first) may follow in the same PEM.
- CA (``ca``): certificates with P-256, P-384 or RSA keys (verifying RSA
  signatures works; only signing with RSA does not); one certificate or, for
  clients, a bundle.
- Every PEM may also be DER (bytes) or a path to a file (str or bytes).
- ``name`` is the expected peer name (also sent as SNI): checked against the
  certificate's DNS/IP SANs, then its CN. With ``ca`` set and
  ``skip_verification=False`` the peer's chain, dates and name are verified;
  without ``ca`` nothing is verified.

A failed verification closes the connection with ``MG_EV_ERROR``, e.g.
``"failed to verify CA"`` (wrong CA), ``"failed to verify hostname"`` (wrong
name) or ``"failed to parse certificate"`` (an expired or not-yet-valid
certificate: Mongoose logs ``cert is no longer valid`` to the ``mongoose_py``
logger just before).
"""
from __future__ import annotations

import base64
import os
import re
from typing import List, Optional, Tuple, Union

from ._ffi import ffi

PemLike = Union[str, bytes, None]

# DER-encoded OIDs (contents octets only)
_OID_RSA = bytes.fromhex("2a864886f70d010101")          # 1.2.840.113549.1.1.1
_OID_EC = bytes.fromhex("2a8648ce3d0201")               # 1.2.840.10045.2.1 id-ecPublicKey
_OID_P256 = bytes.fromhex("2a8648ce3d030107")           # 1.2.840.10045.3.1.7 prime256v1
_OID_P384 = bytes.fromhex("2b81040022")                 # 1.3.132.0.34 secp384r1
_OID_NAMES = {
    _OID_RSA: "RSA", _OID_EC: "EC", _OID_P256: "P-256", _OID_P384: "P-384",
    bytes.fromhex("2b81040023"): "P-521", bytes.fromhex("2b8104000a"): "secp256k1",
    bytes.fromhex("2b6570"): "Ed25519", bytes.fromhex("2b6571"): "Ed448",
    bytes.fromhex("2b656e"): "X25519", bytes.fromhex("2a8648ce380401"): "DSA",
    bytes.fromhex("2a864886f70d01010a"): "RSASSA-PSS",
}
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_ACCEPTED = "Accepted: EC P-256 keys as 'EC PRIVATE KEY' or unencrypted PKCS#8 'PRIVATE KEY'"
_NO_RSA = ("TlsOpts.key: RSA private keys do not work with Mongoose 7.23's built-in TLS "
           "(its RSA-CRT signature fails, so the handshake would die). %s" % _ACCEPTED)


def _pem(value: PemLike, field: str) -> bytes:
    """PEM text as str/bytes, DER bytes, or a path to a PEM/DER file (documented)."""
    if value is None or value == "" or value == b"":
        return b""
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if isinstance(value, str):
        if "-----BEGIN" in value:
            return value.encode("utf-8")
        if os.path.isfile(value):
            with open(value, "rb") as f:
                return f.read()
        raise ValueError("TlsOpts.%s: neither PEM text nor an existing file: %r" % (field, value[:80]))
    if isinstance(value, bytes):
        if b"-----BEGIN" in value:
            return value
        if len(value) < 4096 and b"\0" not in value and os.path.isfile(value):
            with open(value, "rb") as f:
                return f.read()
        return value  # DER
    raise TypeError("TlsOpts.%s: expected str or bytes (PEM text, DER or a file path), got %s"
                    % (field, type(value).__name__))


# ---- a minimal DER reader: enough to tell key and certificate types ----

def _tlv(buf: bytes, i: int) -> Tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at ``buf[i]``."""
    if i + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, n = buf[i], buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or i + k > len(buf):
            raise ValueError("bad DER length")
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    if i + n > len(buf):
        raise ValueError("truncated DER")
    return tag, i, i + n


def _children(buf: bytes, start: int, end: int) -> List[Tuple[int, int, int]]:
    out = []
    i = start
    while i < end:
        t = _tlv(buf, i)
        out.append(t)
        i = t[2]
    return out


def _blocks(data: bytes, kind: str) -> List[Tuple[str, bytes]]:
    """[(PEM label, DER)]; DER input is returned as one block labelled ``kind``."""
    found = [(m.group(1).decode(), base64.b64decode(re.sub(rb"\s+", b"", m.group(2))))
             for m in _PEM_RE.finditer(data)]
    if found:
        return found
    if b"-----BEGIN" in data:
        raise ValueError("malformed PEM")
    return [(kind, data)]


def _name(oid: bytes) -> str:
    return _OID_NAMES.get(oid, "OID " + oid.hex())


def _alg(der: bytes, algid) -> Tuple[bytes, Optional[bytes]]:
    """(algorithm OID, curve OID or None) of an AlgorithmIdentifier."""
    kids = _children(der, algid[1], algid[2])
    if not kids or kids[0][0] != 0x06:
        raise ValueError("bad AlgorithmIdentifier")
    oid = der[kids[0][1]:kids[0][2]]
    curve = None
    if len(kids) > 1 and kids[1][0] == 0x06:
        curve = der[kids[1][1]:kids[1][2]]
    return oid, curve


def key_kind(data: bytes) -> str:
    """``"EC"`` for a key the built-in TLS can use; ``ValueError`` otherwise."""
    blocks = _blocks(data, "DER")
    keys = [(label, der) for label, der in blocks if label.endswith("PRIVATE KEY") or label == "DER"]
    if not keys:
        raise ValueError("TlsOpts.key: no private key found (labels: %s)" % [b[0] for b in blocks])
    label, der = keys[0]
    if label == "ENCRYPTED PRIVATE KEY":
        raise ValueError("TlsOpts.key: encrypted private keys are not supported; "
                         "decrypt it first (openssl pkey -in key.pem -out plain.pem)")
    try:
        tag, s, e = _tlv(der, 0)
        kids = _children(der, s, e)
    except ValueError as exc:
        raise ValueError("TlsOpts.key: not a DER/PEM private key (%s)" % exc) from None
    if label == "EC PRIVATE KEY" or (label == "DER" and len(kids) >= 2 and kids[1][0] == 0x04):
        # ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] curve, [1] pub }
        priv = kids[1] if len(kids) > 1 else None
        curve = None
        for t in kids[2:]:
            if t[0] == 0xA0:
                inner = _children(der, t[1], t[2])
                if inner and inner[0][0] == 0x06:
                    curve = der[inner[0][1]:inner[0][2]]
        if curve is not None and curve != _OID_P256:
            raise ValueError("TlsOpts.key: EC curve %s is not supported by the built-in TLS. %s"
                             % (_name(curve), _ACCEPTED))
        if priv is None or priv[0] != 0x04 or priv[2] - priv[1] != 32 or der[1] & 0x80:
            raise ValueError("TlsOpts.key: EC key is not a P-256 key. %s" % _ACCEPTED)
        return "EC"
    if label == "RSA PRIVATE KEY" or (label == "DER" and len(kids) >= 9 and all(k[0] == 2 for k in kids[:9])):
        if len(kids) < 2 or kids[1][0] != 0x02:
            raise ValueError("TlsOpts.key: bad RSA private key")
        raise ValueError(_NO_RSA)
    if label in ("PRIVATE KEY", "DER"):
        # PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING key }
        if len(kids) < 3 or kids[1][0] != 0x30:
            raise ValueError("TlsOpts.key: bad PKCS#8 private key")
        oid, curve = _alg(der, kids[1])
        if oid == _OID_RSA:
            raise ValueError(_NO_RSA)
        if oid == _OID_EC and curve == _OID_P256:
            return "EC"
        what = _name(oid) + (" " + _name(curve) if curve else "")
        raise ValueError("TlsOpts.key: %s keys are not supported by the built-in TLS. %s" % (what, _ACCEPTED))
    raise ValueError("TlsOpts.key: unsupported PEM block %r. %s" % (label, _ACCEPTED))


def cert_kinds(data: bytes, field: str) -> List[str]:
    """Key kind (``"EC"``/``"RSA"``, or ``"EC384"`` for P-384) of each certificate in ``data``."""
    blocks = [(label, der) for label, der in _blocks(data, "CERTIFICATE") if label == "CERTIFICATE"]
    if not blocks:
        raise ValueError("TlsOpts.%s: no CERTIFICATE found" % field)
    kinds = []
    for _, der in blocks:
        try:
            cert = _tlv(der, 0)
            tbs = _children(der, cert[1], cert[2])[0]
            fields = _children(der, tbs[1], tbs[2])
            if fields and fields[0][0] == 0xA0:  # [0] version
                fields = fields[1:]
            spki = fields[5]  # serial, signature, issuer, validity, subject, spki
            oid, curve = _alg(der, _children(der, spki[1], spki[2])[0])
        except (ValueError, IndexError) as exc:
            raise ValueError("TlsOpts.%s: not a valid X.509 certificate (%s)" % (field, exc)) from None
        if oid == _OID_RSA and field == "ca":
            kinds.append("RSA")
        elif oid == _OID_EC and curve == _OID_P256:
            kinds.append("EC")
        elif oid == _OID_EC and curve == _OID_P384 and field == "ca":
            kinds.append("EC384")
        else:
            what = _name(oid) + (" " + _name(curve) if curve else "")
            raise ValueError("TlsOpts.%s: certificates with %s keys are not supported by the built-in TLS "
                             "(accepted: EC P-256%s)" % (field, what, ", P-384 or RSA for a CA" if field == "ca" else ""))
    return kinds


class TlsOpts:
    """Certificates and keys for :meth:`Connection.tls_init` or ``tls=`` of
    ``listen``/``connect``/``ws_connect``.

    Each of ``ca``, ``cert``, ``key`` is PEM text (str or bytes), DER bytes,
    or a path to a PEM/DER file. ``name`` is the expected server name (SNI
    and hostname check). Types the built-in TLS cannot use raise
    ``ValueError`` here, before any connection is made (see the module
    docstring for the list).

    >>> server = TlsOpts(cert="server.pem", key="server.key")            # doctest: +SKIP
    >>> mgr.listen("https://0.0.0.0:8443", tls=server)                    # doctest: +SKIP
    >>> client = TlsOpts(ca=open("ca.pem").read(), name="localhost")     # doctest: +SKIP
    >>> mgr.connect("https://localhost:8443", tls=client)                # doctest: +SKIP
    """

    __slots__ = ("ca", "cert", "key", "name", "skip_verification")

    def __init__(self, ca: PemLike = None, cert: PemLike = None, key: PemLike = None,
                 name: PemLike = None, skip_verification: bool = False) -> None:
        self.ca = _pem(ca, "ca")
        self.cert = _pem(cert, "cert")
        self.key = _pem(key, "key")
        if isinstance(name, str):
            name = name.encode("utf-8")
        elif name is None:
            name = b""
        elif not isinstance(name, bytes):
            raise TypeError("TlsOpts.name: expected str or bytes, got %s" % type(name).__name__)
        if b"\0" in name or len(name) >= 253:
            raise ValueError("TlsOpts.name: must be a host name shorter than 253 bytes without NUL")
        self.name = name
        self.skip_verification = bool(skip_verification)
        self._check()

    def _check(self) -> None:
        if self.ca:
            cert_kinds(self.ca, "ca")
        if self.cert and not self.key:
            raise ValueError("TlsOpts: cert given without key")
        if self.key and not self.cert:
            raise ValueError("TlsOpts: key given without cert")
        if self.key:
            kind = key_kind(self.key)
            leaf = cert_kinds(self.cert, "cert")[0]
            if leaf != kind:
                raise ValueError("TlsOpts: the certificate has an %s key but the private key is %s" % (leaf, kind))

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
