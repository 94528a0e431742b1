"""Static files (``serve_dir`` / ``serve_file``) and multipart uploads, against
curl, http.client and raw sockets on 127.0.0.1."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import socket
import subprocess
import uuid

import pytest

from conftest import require_tool
from mongoose_py import MG_EV_HTTP_MSG, Connection, http_parse_multipart

TIMEOUT = 15


def curl(*args, timeout=30):
    exe = require_tool("curl")
    return subprocess.run([exe, "-sS", "--max-time", "20"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def client(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)


def get(port, path, headers=None, method="GET"):
    c = client(port)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.msg, r.read()
    finally:
        c.close()


def raw_get(port, target, extra=b""):
    """Send a request target byte-for-byte (no client-side normalisation) and
    read the response by its Content-Length. Returns (status, head, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
        f = s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = f.readline()
            assert line, "connection closed inside the head: %r" % head
            head += line
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = f.read(length)
        f.close()
    return int(head.split(b" ")[1]), head, body


# --------------------------------------------------------------------------
# the document tree
# --------------------------------------------------------------------------

class Site:
    pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    s = Site()
    s.secret = ("TOP-SECRET-%s" % uuid.uuid4().hex).encode()
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_bytes(s.secret)
    (base / "outside" / "unindexed_dir").mkdir()
    (base / "secret.txt").write_bytes(s.secret)
    root = base / "root"
    root.mkdir()
    s.root = str(root)
    s.files = {
        "hello.txt": (b"hello, static world\n", "text/plain; charset=utf-8"),
        "page.html": (b"<!doctype html><title>t</title><p>page</p>\n", "text/html; charset=utf-8"),
        "style.css": (b"body { color: red }\n", "text/css; charset=utf-8"),
        "app.js": (b"console.log('hi');\n", "text/javascript; charset=utf-8"),
        "data.json": (b'{"k": [1, 2, 3]}', "application/json"),
        "image.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png"),
        "blob.bin": (random.Random(7).getrandbits(8 * 2 * 1024 * 1024).to_bytes(2 * 1024 * 1024, "little"),
                     "text/plain; charset=utf-8"),  # unknown extension: Mongoose's fallback type
        "space name.txt": (b"a file with a space\n", "text/plain; charset=utf-8"),
        "sub/nested.txt": (b"nested file\n", "text/plain; charset=utf-8"),
        "sub/deeper/x.txt": (b"deeper\n", "text/plain; charset=utf-8"),
        "withidx/index.html": (b"<p>the index page</p>\n", "text/html; charset=utf-8"),
        "withidx/other.txt": (b"other\n", "text/plain; charset=utf-8"),
    }
    for rel, (data, _) in s.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    errors = base / "errors"
    errors.mkdir()
    s.page404_body = b"<h1>custom: nothing here</h1>\n"
    s.page404 = str(errors / "404.html")
    (errors / "404.html").write_bytes(s.page404_body)
    return s


def static_handler(site, uploads=None):
    """serve_dir with options chosen per request by the X-Mode header."""

    def handler(conn, ev, msg):
        if ev != MG_EV_HTTP_MSG:
            return
        mode = msg.header("X-Mode", "")
        if msg.uri == "/upload":
            parts = []
            ofs = 0
            for _ in range(100):  # bounded
                ofs, part = http_parse_multipart(msg.body_bytes, ofs)
                if part is None:
                    break
                parts.append({"name": part["name"], "filename": part["filename"], "len": len(part["body"]),
                              "sha256": hashlib.sha256(part["body"]).hexdigest(),
                              "text": part["body"].decode("utf-8", "replace") if len(part["body"]) < 100 else None})
            if uploads is not None:
                uploads.append(parts)
            conn.reply_json(parts)
        elif mode == "nolist":
            conn.serve_dir(msg, site.root, dir_listing=False)
        elif mode == "page404":
            conn.serve_dir(msg, site.root, page404=site.page404)
        elif mode == "extra_dict":
            conn.serve_dir(msg, site.root, extra_headers={"X-Static": "yes", "Cache-Control": "max-age=60"})
        elif mode == "extra_raw":
            conn.serve_dir(msg, site.root, "X-Raw-One: 1\r\nX-Raw-Two: 2\r\n")
        elif mode == "mime":
            conn.serve_dir(msg, site.root, mime_types="txt=application/x-custom,bin=application/x-blob")
        elif mode == "mapped":
            conn.serve_dir(msg, "/static=" + site.root)
        elif mode == "mapped_nolist":
            conn.serve_dir(msg, "/static=" + site.root, dir_listing=False)
        elif mode == "file":
            conn.serve_file(msg, os.path.join(site.root, "blob.bin"))
        elif mode == "file_missing":
            conn.serve_file(msg, os.path.join(site.root, "does-not-exist.txt"))
        elif mode == "file_html":
            conn.serve_file(msg, os.path.join(site.root, "page.html"), {"X-File": "1"})
        else:
            conn.serve_dir(msg, site.root)

    return handler


@pytest.fixture
def static_port(serve, site):
    _, _, port = serve(static_handler(site))
    return port


def mode(m):
    return {"X-Mode": m}


# --------------------------------------------------------------------------
# content, types, lengths
# --------------------------------------------------------------------------

def test_files_content_and_content_type_http_client(static_port, site):
    c = client(static_port)
    for rel, (data, ctype) in sorted(site.files.items()):
        path = "/" + rel.replace(" ", "%20")
        c.request("GET", path)          # one keep-alive connection for all files
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, rel
        assert body == data, rel
        assert r.getheader("Content-Type") == ctype, rel
        assert r.msg.get_all("Content-Length") == [str(len(data))], rel
        assert r.getheader("Etag"), rel
    c.close()


def test_files_with_curl(static_port, site, tmp_path):
    for rel in ("hello.txt", "image.png", "blob.bin", "sub/deeper/x.txt"):
        out = tmp_path / "out"
        r = curl("-o", str(out), "-w", "%{http_code}|%{content_type}",
                 "http://127.0.0.1:%d/%s" % (static_port, rel))
        assert r.returncode == 0, r.stderr
        data, ctype = site.files[rel]
        assert r.stdout.decode() == "200|" + ctype
        assert out.read_bytes() == data


def test_directory_index_file_is_served(static_port, site):
    status, h, body = get(static_port, "/withidx/")
    assert status == 200 and body == site.files["withidx/index.html"][0]
    status, h, body = get(static_port, "/withidx")
    assert status == 301 and h["Location"] == "/withidx/"


def test_head_and_etag(static_port, site):
    data = site.files["page.html"][0]
    status, h, body = get(static_port, "/page.html", method="HEAD")
    assert status == 200 and body == b""
    assert h["Content-Length"] == str(len(data))
    etag = h["Etag"]
    status, h2, body = get(static_port, "/page.html", {"If-None-Match": etag})
    assert status == 304 and body == b""
    status, h3, body = get(static_port, "/page.html", {"If-None-Match": '"something-else"'})
    assert status == 200 and body == data


# --------------------------------------------------------------------------
# ranges
# --------------------------------------------------------------------------

def test_range_requests_http_client(static_port, site):
    data = site.files["blob.bin"][0]
    n = len(data)
    c = client(static_port)
    for rng, start, end in (("bytes=10-19", 10, 19), ("bytes=0-0", 0, 0), ("bytes=%d-" % (n - 100), n - 100, n - 1),
                            ("bytes=1000000-1999999", 1000000, 1999999)):
        c.request("GET", "/blob.bin", headers={"Range": rng})
        r = c.getresponse()
        body = r.read()
        assert r.status == 206, rng
        assert r.getheader("Content-Range") == "bytes %d-%d/%d" % (start, end, n), rng
        assert int(r.getheader("Content-Length")) == end - start + 1
        assert body == data[start:end + 1], rng
    c.request("GET", "/blob.bin", headers={"Range": "bytes=%d-%d" % (n, n + 10)})
    r = c.getresponse()
    assert r.status == 416 and r.read() == b""
    assert r.getheader("Content-Range") == "bytes */%d" % n
    c.close()


@pytest.mark.xfail(strict=True, reason="BUG (Mongoose 7.23 getrange, not fixed by the binding): a suffix "
                                       "range 'bytes=-N' answers 206 with the WHOLE file as 'bytes 0-(size-1)'")
def test_suffix_range_gives_the_last_bytes(static_port, site):
    data = site.files["hello.txt"][0]
    status, h, body = get(static_port, "/hello.txt", {"Range": "bytes=-6"})
    assert status == 206
    assert h["Content-Range"] == "bytes %d-%d/%d" % (len(data) - 6, len(data) - 1, len(data))
    assert body == data[-6:]


def test_range_requests_curl(static_port, site, tmp_path):
    data = site.files["blob.bin"][0]
    out = tmp_path / "part"
    r = curl("-r", "100-1123", "-o", str(out), "-w", "%{http_code}", "http://127.0.0.1:%d/blob.bin" % static_port)
    assert r.stdout == b"206"
    assert out.read_bytes() == data[100:1124]


def test_serve_file_ignores_uri_and_supports_ranges(static_port, site):
    data = site.files["blob.bin"][0]
    status, h, body = get(static_port, "/any/path/at/all?x=1", mode("file"))
    assert status == 200 and body == data
    status, h, body = get(static_port, "/whatever", dict(mode("file"), Range="bytes=5-9"))
    assert status == 206 and body == data[5:10]
    status, h, body = get(static_port, "/x", mode("file_html"))
    assert status == 200 and body == site.files["page.html"][0]
    assert h["Content-Type"] == "text/html; charset=utf-8" and h["X-File"] == "1"
    status, h, body = get(static_port, "/x", mode("file_missing"))
    assert status == 404


def test_keep_alive_across_static_files(static_port, site):
    """Big file, small file, range, 404 and a listing on one connection: each
    response ends where its Content-Length says."""
    c = client(static_port)
    for path, headers, expected in (
            ("/blob.bin", {}, site.files["blob.bin"][0]),
            ("/hello.txt", {}, site.files["hello.txt"][0]),
            ("/blob.bin", {"Range": "bytes=7-16"}, site.files["blob.bin"][0][7:17]),
            ("/nope", {}, None),
            ("/sub/", {}, None),
            ("/image.png", {}, site.files["image.png"][0])):
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        if expected is not None:
            assert body == expected, path
    c.close()


def test_connection_close_honoured_for_static_files(static_port, site):
    with socket.create_connection(("127.0.0.1", static_port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        f = s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.readline()
        assert f.read(len(site.files["hello.txt"][0])) == site.files["hello.txt"][0]
        f.close()
        s.settimeout(2.0)
        try:
            eof = s.recv(1) == b""
        except socket.timeout:
            eof = False
        assert eof, "the server kept the connection open after 'Connection: close'"


# --------------------------------------------------------------------------
# 404
# --------------------------------------------------------------------------

def test_missing_file_is_404(static_port):
    status, h, body = get(static_port, "/no-such-file.txt")
    assert status == 404
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/sub/nope" % static_port)
    assert r.stdout == b"404"


def test_custom_404_page_content(static_port, site):
    status, h, body = get(static_port, "/no-such-file.txt", mode("page404"))
    assert body == site.page404_body
    assert h["Content-Type"] == "text/html; charset=utf-8"
    # existing files are unaffected by page404
    status, h, body = get(static_port, "/hello.txt", mode("page404"))
    assert (status, body) == (200, site.files["hello.txt"][0])


def test_custom_404_page_has_status_404(static_port, site):
    status, h, body = get(static_port, "/no-such-file.txt", mode("page404"))
    assert body == site.page404_body
    assert status == 404


# --------------------------------------------------------------------------
# path traversal
# --------------------------------------------------------------------------

TRAVERSALS = [
    b"/../secret.txt",
    b"/../outside/secret.txt",
    b"/sub/../../secret.txt",
    b"/sub/deeper/../../../outside/secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/outside/secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e./secret.txt",
    b"/sub/%2e%2e/%2e%2e/secret.txt",
    b"/..%2fsecret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"//../secret.txt",
    b"/sub//..//..//secret.txt",
    b"/..",
    b"/../",
    b"/../../../../../../../../etc/passwd",
    b"/%252e%252e/secret.txt",           # double-encoded: stays literal after one decode
    b"/sub/..%5c..%5csecret.txt",       # backslashes are not separators on POSIX
    b"/sub/..\\..\\secret.txt",
]


@pytest.mark.parametrize("m", [b"", b"nolist", b"extra_raw", b"page404"])
def test_traversal_refused_raw(static_port, site, m):
    for target in TRAVERSALS:
        status, head, body = raw_get(static_port, target, b"X-Mode: " + m + b"\r\n" if m else b"")
        assert site.secret not in body and site.secret not in head, target
        assert b"root:x:0:0" not in body, target
        if m != b"page404":
            assert status != 200, (target, status)
        else:  # page404 answers with the custom page (see the xfail above), never the secret
            assert status != 200 or body == site.page404_body, (target, status)


def test_traversal_refused_curl_path_as_is(static_port, site):
    for target in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../outside/secret.txt"):
        r = curl("--path-as-is", "-w", "|%{http_code}", "http://127.0.0.1:%d%s" % (static_port, target))
        assert r.returncode == 0, r.stderr
        assert site.secret not in r.stdout
        assert not r.stdout.endswith(b"|200"), (target, r.stdout)


def test_traversal_refused_http_client(static_port, site):
    for target in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/%2e%2e/%2e%2e/outside/secret.txt"):
        status, h, body = get(static_port, target)
        assert status != 200 and site.secret not in body


def test_traversal_with_dir_listing_off_reveals_nothing_outside_root(static_port):
    exists, _, _ = raw_get(static_port, b"/../outside/unindexed_dir/", b"X-Mode: nolist\r\n")
    missing, _, _ = raw_get(static_port, b"/../outside/no_such_dir/", b"X-Mode: nolist\r\n")
    assert exists == missing


# --------------------------------------------------------------------------
# directory listing
# --------------------------------------------------------------------------

def test_directory_listing_on(static_port):
    status, h, body = get(static_port, "/sub/")
    assert status == 200
    assert h["Content-Type"].startswith("text/html")
    assert b"nested.txt" in body and b"deeper" in body
    status, h, body = get(static_port, "/sub")
    assert status == 301 and h["Location"] == "/sub/"
    status, h, body = get(static_port, "/")
    assert status == 200 and b"hello.txt" in body


def test_directory_listing_off_gives_403(static_port, site):
    for path in ("/sub/", "/sub/deeper/", "/"):
        status, h, body = get(static_port, path, mode("nolist"))
        assert status == 403, path
        assert b"nested.txt" not in body and b"hello.txt" not in body
    # files and index pages are still served
    status, h, body = get(static_port, "/withidx/", mode("nolist"))
    assert (status, body) == (200, site.files["withidx/index.html"][0])
    status, h, body = get(static_port, "/sub/nested.txt", mode("nolist"))
    assert (status, body) == (200, site.files["sub/nested.txt"][0])
    r = curl("-H", "X-Mode: nolist", "-w", "|%{http_code}", "http://127.0.0.1:%d/sub/" % static_port)
    assert r.stdout.endswith(b"|403") and b"nested.txt" not in r.stdout


def test_mapped_root_dir(static_port, site):
    """root_dir may be "/prefix=dir" (Mongoose's uri_to_path)."""
    status, h, body = get(static_port, "/static/hello.txt", mode("mapped"))
    assert (status, body) == (200, site.files["hello.txt"][0])
    status, h, body = get(static_port, "/static/sub/", mode("mapped"))
    assert status == 200 and b"nested.txt" in body


def test_mapped_root_dir_listing_off(static_port, site):
    status, h, body = get(static_port, "/static/sub/", mode("mapped_nolist"))
    assert status == 403 and b"nested.txt" not in body


# --------------------------------------------------------------------------
# extra headers, MIME types
# --------------------------------------------------------------------------

def test_extra_headers_dict_and_raw(static_port, site):
    status, h, body = get(static_port, "/hello.txt", mode("extra_dict"))
    assert status == 200 and body == site.files["hello.txt"][0]
    assert h["X-Static"] == "yes" and h["Cache-Control"] == "max-age=60"
    status, h, body = get(static_port, "/missing.txt", mode("extra_dict"))
    assert status == 404 and h["X-Static"] == "yes"      # also on Mongoose's own replies
    status, h, body = get(static_port, "/hello.txt", mode("extra_raw"))
    assert h["X-Raw-One"] == "1" and h["X-Raw-Two"] == "2"
    r = curl("-D", "-", "-o", "/dev/null", "-H", "X-Mode: extra_dict", "http://127.0.0.1:%d/page.html" % static_port)
    assert b"\r\nX-Static: yes\r\n" in r.stdout


def test_extra_headers_injection_refused(serve, site):
    caught = []

    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            for extra in ({"X-A": "1\r\nSet-Cookie: x=1"}, {"X-A\nB": "1"}, "X-A: 1\nSet-Cookie: x=1\r\n",
                          "X-A: 1\r\nX-B\0: 2\r\n"):
                try:
                    conn.serve_dir(msg, site.root, extra_headers=extra)
                except ValueError:
                    caught.append(extra)
                try:
                    conn.serve_file(msg, os.path.join(site.root, "hello.txt"), extra_headers=extra)
                except ValueError:
                    caught.append(extra)
            conn.serve_dir(msg, site.root)

    _, _, port = serve(handler)
    status, h, body = get(port, "/hello.txt")
    assert (status, body) == (200, site.files["hello.txt"][0])
    assert h["Set-Cookie"] is None
    assert len(caught) == 8


def test_mime_types_override(static_port, site):
    status, h, body = get(static_port, "/hello.txt", mode("mime"))
    assert h["Content-Type"] == "application/x-custom"
    status, h, body = get(static_port, "/blob.bin", dict(mode("mime"), Range="bytes=0-3"))
    assert h["Content-Type"] == "application/x-blob"
    status, h, body = get(static_port, "/page.html", mode("mime"))
    assert h["Content-Type"] == "text/html; charset=utf-8"     # built-in table still applies


def test_serve_dir_from_subclass_hook(serve, site):
    class Static(Connection):
        def on_http_msg(self, msg):
            self.serve_dir(msg, site.root)

    _, _, port = serve(connection_class=Static)
    c = client(port)
    for rel in ("hello.txt", "blob.bin", "sub/nested.txt"):
        c.request("GET", "/" + rel)
        assert c.getresponse().read() == site.files[rel][0]
    c.close()


def test_serve_dir_with_expired_message_raises(serve, site):
    kept, errors = [], []

    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            if kept:
                try:
                    conn.serve_dir(kept[0], site.root)
                except ValueError as exc:
                    errors.append(exc)
            kept.append(msg)
            conn.serve_dir(msg, site.root)

    _, _, port = serve(handler)
    c = client(port)
    for _ in range(2):
        c.request("GET", "/hello.txt")
        assert c.getresponse().read() == site.files["hello.txt"][0]
    c.close()
    assert len(errors) == 1


# --------------------------------------------------------------------------
# multipart upload
# --------------------------------------------------------------------------

def test_multipart_upload_curl(serve, site, tmp_path):
    uploads = []
    _, _, port = serve(static_handler(site, uploads))
    blob = random.Random(11).getrandbits(8 * 300000).to_bytes(300000, "little") + b"\x00\r\n--\x00"
    f1 = tmp_path / "upload.bin"
    f1.write_bytes(blob)
    f2 = tmp_path / "notes.txt"
    f2.write_bytes(b"line 1\nline 2\n")
    r = curl("-H", "Expect:", "-F", "title=hello world", "-F", "file=@%s" % f1,
             "-F", "notes=@%s;type=text/plain" % f2, "-F", "empty=",
             "http://127.0.0.1:%d/upload" % port)
    assert r.returncode == 0, r.stderr
    parts = json.loads(r.stdout)
    assert parts == uploads[0]
    assert [(p["name"], p["filename"]) for p in parts] == [
        ("title", ""), ("file", "upload.bin"), ("notes", "notes.txt"), ("empty", "")]
    assert parts[0]["text"] == "hello world"
    assert parts[1]["len"] == len(blob) and parts[1]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert parts[2]["text"] == "line 1\nline 2\n"
    assert parts[3]["len"] == 0


def test_multipart_upload_http_client(serve, site):
    _, _, port = serve(static_handler(site))
    boundary = "----mgpy-boundary-%s" % uuid.uuid4().hex
    payload = bytes(range(256)) * 8
    body = (
        "--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue A\r\n"
        "--{b}\r\nContent-Disposition: form-data; name=\"bin\"; filename=\"x.dat\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).format(b=boundary).encode() + payload + "\r\n--{b}--\r\n".format(b=boundary).encode()
    c = client(port)
    c.request("POST", "/upload", body=body, headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    r = c.getresponse()
    parts = json.loads(r.read())
    c.close()
    assert [(p["name"], p["filename"], p["len"]) for p in parts] == [("a", "", 7), ("bin", "x.dat", 2048)]
    assert parts[0]["text"] == "value A"
    assert parts[1]["sha256"] == hashlib.sha256(payload).hexdigest()


def test_http_parse_multipart_direct():
    body = (b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"n.txt\"\r\n\r\n\x00data\x00\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"g\"\r\n\r\n\r\n--B--\r\n")
    ofs, p1 = http_parse_multipart(body)
    assert p1 == {"name": "f", "filename": "n.txt", "body": b"\x00data\x00"}
    ofs, p2 = http_parse_multipart(body, ofs)
    assert p2 == {"name": "g", "filename": "", "body": b""}
    assert http_parse_multipart(body, ofs) == (0, None)
    assert http_parse_multipart(b"not multipart") == (0, None)
    assert http_parse_multipart(body, len(body) + 5) == (0, None)
