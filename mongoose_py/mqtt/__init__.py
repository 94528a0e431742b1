"""A ready MQTT 3.1.1 broker and a reconnecting MQTT client, over Mongoose.

Broker in three lines::

    from mongoose_py.mqtt import Broker
    broker = Broker("mqtt://0.0.0.0:1883")
    broker.run()

or on a Manager you already run: ``Broker(mgr).listen("mqtt://127.0.0.1:1883")``
(``listen`` again with ``"mqtts://..."`` and ``tls=TlsOpts(cert=..., key=...)``
for MQTT over TLS).

What the broker does (MQTT 3.1.1, and 3.1 clients): CONNECT/CONNACK with an
optional ``auth(client_id, username, password)`` callback; SUBSCRIBE/SUBACK
and UNSUBSCRIBE/UNSUBACK; PUBLISH routing with ``+`` and ``#`` wildcards
(wildcards at the first level never match ``$``-topics); retained messages
(set, replace, clear with an empty payload); QoS 0, 1 and 2 end to end (an
incoming QoS 2 message is routed once even if the publisher re-sends it before
PUBREL; subscribers get it with QoS ``min(published, granted)``, a QoS 2
subscriber through PUBREC/PUBREL/PUBCOMP); will messages when a client goes
away without DISCONNECT (also on keepalive timeout, malformed input and
session takeover); keepalive timeout at 1.5 × the client's keepalive; session
takeover on a duplicate client id; persistent sessions (``clean_session=0``:
subscriptions kept, QoS 1/2 messages queued while offline, unacknowledged ones
re-sent with DUP on reconnect); PINGREQ → PINGRESP.

Limits (documented, deliberate): MQTT 5 clients get CONNACK "unacceptable
protocol version" (Mongoose parses accepted connections as 3.1.1); sessions
and retained messages live in memory only; QoS 0 messages to a subscriber
whose send buffer is above ``max_send_buffer`` are dropped.

Mongoose itself answers a publisher's QoS 1 PUBLISH with PUBACK, QoS 2 with
PUBREC, PUBREL with PUBCOMP and a subscriber's PUBREC with PUBREL
(MONGOOSE.md §1.6); the broker does the rest in Python.
"""
from __future__ import annotations

from .._mqtt import PROPS
from ._broker import AuthCallback, Broker
from ._client import MqttClient
from ._packets import (  # noqa: F401  (_Trie: for tests)
    CONNACK_ACCEPTED, CONNACK_BAD_CREDENTIALS, CONNACK_BAD_PROTOCOL, CONNACK_ID_REJECTED,
    CONNACK_NOT_AUTHORIZED, CONNACK_UNAVAILABLE, _Trie, topic_matches, valid_topic_filter,
)

__all__ = ["Broker", "MqttClient", "PROPS", "topic_matches", "valid_topic_filter",
           "CONNACK_ACCEPTED", "CONNACK_BAD_PROTOCOL", "CONNACK_ID_REJECTED",
           "CONNACK_UNAVAILABLE", "CONNACK_BAD_CREDENTIALS", "CONNACK_NOT_AUTHORIZED"]
