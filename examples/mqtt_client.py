#!/usr/bin/env python3
"""MQTT client: subscribe, publish with QoS, keepalive pings, reconnection.

Follows Mongoose's tutorial "tutorials/mqtt/mqtt-client": a repeating timer
connects whenever there is no connection (so the client can start before the
broker and survives a broker restart), another sends a PINGREQ every
keepalive period (Mongoose does not ping by itself, and a broker drops a
client that stays silent for 1.5 keepalive periods). On MG_EV_MQTT_OPEN the
client subscribes and publishes.

Run it (start examples/mqtt_broker.py or mosquitto first)::

    python examples/mqtt_client.py                       # mqtt://127.0.0.1:1883
    python examples/mqtt_client.py --url mqtt://127.0.0.1:1884 --sub 'demo/#' \\
        --pub demo/hello --message 'hi' --qos 1 --count 1

Every received message is printed as ``TOPIC PAYLOAD``. With ``--count N``
the client exits (status 0) after N messages.

``mongoose_py.mqtt.MqttClient`` does all of this (and more: backoff,
re-subscribing, offline queue) for you; this example shows the underlying API.
"""
from __future__ import annotations

import argparse

from mongoose_py import (
    MG_EV_CLOSE, MG_EV_ERROR, MG_EV_MQTT_MSG, MG_EV_MQTT_OPEN, Manager,
)


def main() -> None:
    ap = argparse.ArgumentParser(description="MQTT client")
    ap.add_argument("--url", default="mqtt://127.0.0.1:1883", help="broker URL")
    ap.add_argument("--client-id", default="", help="empty: Mongoose makes one up")
    ap.add_argument("--sub", default="mongoose_py/demo", help="topic filter to subscribe to")
    ap.add_argument("--pub", default="mongoose_py/demo", help="topic to publish to after connecting")
    ap.add_argument("--message", default="hello from mongoose_py", help="what to publish")
    ap.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    ap.add_argument("--keepalive", type=int, default=30, help="seconds; a PINGREQ goes out this often (0: never)")
    ap.add_argument("--reconnect", type=float, default=2.0, help="seconds between connection attempts")
    ap.add_argument("--count", type=int, default=0, help="exit after this many messages (0: run forever)")
    args = ap.parse_args()

    state = {"conn": None, "connected": False, "received": 0}

    def handler(conn, ev, data):
        if ev == MG_EV_MQTT_OPEN:  # CONNACK arrived; data is its return code
            if data != 0:
                print("broker refused the connection: code %d" % data, flush=True)
                return
            state["connected"] = True
            print("connected to %s" % args.url, flush=True)
            conn.mqtt_sub(args.sub, qos=args.qos)
            if args.pub:
                conn.mqtt_pub(args.pub, args.message, qos=args.qos)
        elif ev == MG_EV_MQTT_MSG:
            print("%s %s" % (data.topic, data.text), flush=True)
            state["received"] += 1
            if args.count and state["received"] >= args.count:
                conn.mqtt_disconnect()
                mgr.stop()
        elif ev == MG_EV_ERROR:
            print("error: %s" % data, flush=True)
        elif ev == MG_EV_CLOSE:
            print("disconnected", flush=True)
            state["conn"], state["connected"] = None, False  # the reconnect timer takes over

    def reconnect():
        if state["conn"] is None:
            state["conn"] = mgr.mqtt_connect(args.url, handler, client_id=args.client_id,
                                             keepalive=args.keepalive, clean_session=True)

    def keepalive():
        if state["connected"]:
            state["conn"].mqtt_ping()  # the broker answers PINGRESP

    with Manager() as mgr:
        mgr.timer_add(int(args.reconnect * 1000), reconnect, repeat=True, run_now=True)
        if args.keepalive:
            mgr.timer_add(args.keepalive * 1000, keepalive, repeat=True)
        mgr.run(poll_ms=100, shutdown_timeout=1)


if __name__ == "__main__":
    main()
