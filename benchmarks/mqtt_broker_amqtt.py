"""MQTT broker: amqtt (asyncio), one TCP listener, anonymous clients, and no
other plugin (no $SYS, no event/packet logging: its lightest setup).
Usage: --port N"""
import asyncio
import logging

from amqtt.broker import Broker

from server_cli import parse_args, run_async


async def amain(port):
    config = {
        "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:%d" % port}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    await asyncio.Future()


def main():
    args = parse_args(1883)
    logging.basicConfig(level=logging.WARNING)
    run_async(amain(args.port))


if __name__ == "__main__":
    main()
