#!/usr/bin/env python3
"""HTTP file upload, streamed to disk as it arrives (any size, little RAM).

Follows Mongoose's tutorial "tutorials/http/file-upload-single-post": on
MG_EV_HTTP_HDRS (headers received, body not yet) the handler takes the
request headers out of the receive buffer, which detaches Mongoose's HTTP
parser from the connection; from then on every MG_EV_READ hands it raw body
bytes, which go straight into a file.

Run it::

    python examples/http_file_upload.py --upload-dir /tmp/uploads

Try it::

    curl --data-binary @big.iso 'http://127.0.0.1:8000/upload?name=big.iso'

The answer is JSON: ``{"name": ..., "size": ..., "sha256": ...}``. Uploads
larger than ``--max-size`` get 413. (Multipart forms, buffered in memory, are
in examples/http_server.py.)
"""
from __future__ import annotations

import argparse
import hashlib
import os

from mongoose_py import Connection, Manager


class Upload(Connection):
    upload_dir = "uploads"
    max_size = 1 << 30
    file = None          # the open file while a body is streaming in

    def on_http_hdrs(self, msg):
        if msg.uri != "/upload" or msg.method not in ("POST", "PUT"):
            return  # let MG_EV_HTTP_MSG answer it
        length = msg.header("Content-Length")
        if length is None or not length.strip().isdigit():
            self.reply(411, "Content-Length required\n")
            return self.drain()
        self.expected = int(length)
        if self.expected > self.max_size:
            self.reply(413, "Too large: at most %d bytes\n" % self.max_size)
            return self.drain()
        name = os.path.basename(msg.query_var("name") or "upload.bin") or "upload.bin"
        self.path = os.path.join(self.upload_dir, name)
        os.makedirs(self.upload_dir, exist_ok=True)
        self.file = open(self.path + ".part", "wb")
        self.received = 0
        self.digest = hashlib.sha256()
        # Remove the headers from the receive buffer: Mongoose stops parsing
        # HTTP on this connection; the body arrives through on_read().
        head = self.recv_data(64 * 1024).find(b"\r\n\r\n")
        self.consume(head + 4)
        self.on_read()  # body bytes that came with the headers

    def on_read(self):
        if self.file is None:
            return
        data = self.read(self.expected - self.received)
        self.file.write(data)
        self.digest.update(data)
        self.received += len(data)
        if self.received == self.expected:
            self.file.close()
            self.file = None
            os.replace(self.path + ".part", self.path)
            self.reply_json({"name": os.path.basename(self.path), "size": self.received,
                             "sha256": self.digest.hexdigest()})
            self.drain()  # no HTTP parser any more: one upload per connection

    def on_http_msg(self, msg):
        self.reply(200, "POST a file to /upload?name=FILE (curl --data-binary @FILE ...)\n")

    def on_close(self):
        if self.file is not None:  # the client went away mid-upload
            self.file.close()
            os.remove(self.path + ".part")


def main() -> None:
    ap = argparse.ArgumentParser(description="Upload server that streams request bodies to disk")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    ap.add_argument("--upload-dir", default="uploads")
    ap.add_argument("--max-size", type=int, default=1 << 30, help="bytes")
    args = ap.parse_args()
    Upload.upload_dir, Upload.max_size = args.upload_dir, args.max_size

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=Upload)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=10)  # uploads in flight get 10 s


if __name__ == "__main__":
    main()
