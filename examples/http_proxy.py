#!/usr/bin/env python3
"""HTTP CONNECT proxy: the tunnel that examples/http_proxy_client.py goes through.

The server side of Mongoose's tutorial "tutorials/http/http-proxy-client":
a client sends ``CONNECT host:port``; the proxy opens a TCP connection to
that address, answers ``200 Connection established`` and from then on copies
bytes both ways. The client's connection stays "in a response" (Mongoose's
HTTP parser then leaves the bytes alone), so ``on_read`` sees the raw tunnel.

Run it::

    python examples/http_proxy.py --port 3128

Try it::

    curl -p -x http://127.0.0.1:3128 http://127.0.0.1:8000/api/info
    python examples/http_proxy_client.py --proxy http://127.0.0.1:3128 http://127.0.0.1:8000/

This is an open proxy: anyone who can reach it can tunnel anywhere. Keep it
on 127.0.0.1, or check the target in ``on_http_msg``.
"""
from __future__ import annotations

import argparse

from mongoose_py import MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_READ, Connection, Manager

UPSTREAM_EVENTS = {MG_EV_CONNECT, MG_EV_READ, MG_EV_ERROR, MG_EV_CLOSE}


class ProxyClient(Connection):
    """A client of the proxy; ``upstream`` is its connection to the target."""

    upstream = None
    tunnel_open = False

    def on_http_msg(self, msg):
        host, _, port = msg.uri.rpartition(":")
        if msg.method != "CONNECT" or not host or not port.isdigit():
            self.reply(405, "This proxy only tunnels: CONNECT host:port\n", {"Allow": "CONNECT"})
            return self.drain()
        # The upstream's events go to a bound method of this connection: the
        # pair stays together without any lookup table.
        self.upstream = self.manager.connect("tcp://%s:%s" % (host, port), self.on_upstream,
                                             events=UPSTREAM_EVENTS)

    def on_upstream(self, up, ev, data):
        if ev == MG_EV_CONNECT:
            self.tunnel_open = True
            self.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if self.recv_len:  # the client did not wait for our answer
                up.send(self.read())
        elif ev == MG_EV_READ:
            if not self.is_closing:
                self.send(up.read())
        elif ev == MG_EV_ERROR and not self.tunnel_open and not self.is_closing:
            self.reply(502, "Cannot reach the target: %s\n" % data)
            self.drain()
        elif ev == MG_EV_CLOSE:
            self.drain()  # send what the target sent, then close

    def on_read(self):
        if self.tunnel_open and self.upstream is not None:
            self.upstream.send(self.read())

    def on_close(self):
        if self.upstream is not None:
            self.upstream.drain()


def main() -> None:
    ap = argparse.ArgumentParser(description="HTTP CONNECT tunnelling proxy")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3128, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=ProxyClient)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=2)  # open tunnels get 2 s


if __name__ == "__main__":
    main()
