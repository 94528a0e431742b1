"""MQTT broker: amqtt (asyncio), one TCP listener, anonymous clients, and no
other plugin (no $SYS, no event/packet logging: its lightest setup).
Usage: --port N"""
import argparse
import asyncio
import logging

from amqtt.broker import Broker


async def amain(port):
    config = {
        "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:%d" % port}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    await asyncio.Future()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=1883)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(amain(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
