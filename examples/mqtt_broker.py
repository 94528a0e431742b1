#!/usr/bin/env python3
"""MQTT broker: subscriptions, topic wildcards, message routing.

Follows Mongoose's tutorial "tutorials/mqtt/mqtt-server". The C tutorial
writes the broker by hand on ``mg_mqtt_listen`` + MG_EV_MQTT_CMD; mongoose_py
ships that broker, complete, as ``mongoose_py.mqtt.Broker`` (MQTT 3.1.1: QoS
0/1/2, ``+``/``#`` wildcards, retained messages, wills, keepalive, persistent
sessions). This example runs it on a Manager and logs what happens through
the Broker's hooks.

Run it::

    python examples/mqtt_broker.py --port 1883
    python examples/mqtt_broker.py --auth alice:secret     # require a login

Try it (mosquitto-clients, or examples/mqtt_client.py)::

    mosquitto_sub -h 127.0.0.1 -p 1883 -t 'demo/#' -v &
    mosquitto_pub -h 127.0.0.1 -p 1883 -t demo/hello -m 'hi'
"""
from __future__ import annotations

import argparse

from mongoose_py import Manager
from mongoose_py.mqtt import Broker


class LoggingBroker(Broker):
    """The Broker's hooks run on the loop thread, like every handler."""

    verbose = False

    def on_client_connect(self, client_id, username):
        print("connect    %s%s" % (client_id, " (user %s)" % username if username else ""), flush=True)

    def on_client_disconnect(self, client_id, graceful):
        print("disconnect %s%s" % (client_id, "" if graceful else " (no DISCONNECT)"), flush=True)

    def on_message(self, client_id, topic, payload, qos, retain):
        if self.verbose:
            print("publish    %s -> %s (%d bytes, QoS %d%s)"
                  % (client_id, topic, len(payload), qos, ", retained" if retain else ""), flush=True)
        return True  # False would drop the message instead of routing it


def login_checker(user_pass: str):
    """The Broker's ``auth`` callback: True accepts, False refuses (CONNACK 5)."""
    user, _, password = user_pass.partition(":")

    def auth(client_id, username, pw):  # pw: bytes or None
        return username == user and pw == password.encode("utf-8")

    return auth


def main() -> None:
    ap = argparse.ArgumentParser(description="MQTT 3.1.1 broker")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883, help="0 picks a free port")
    ap.add_argument("--auth", metavar="USER:PASS", help="accept only this login")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every published message")
    args = ap.parse_args()

    with Manager() as mgr:
        broker = LoggingBroker(mgr, auth=login_checker(args.auth) if args.auth else None)
        broker.verbose = args.verbose
        listener = broker.listen("mqtt://%s:%d" % (args.host, args.port))
        print("listening on mqtt://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=1)


if __name__ == "__main__":
    main()
