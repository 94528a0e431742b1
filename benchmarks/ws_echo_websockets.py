"""WebSocket echo server on the `websockets` library (asyncio, its default
settings: permessage-deflate is offered but the load generator does not ask
for it). Usage: --port N"""
import asyncio

from websockets.asyncio.server import serve

from server_cli import parse_args, run_async


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def amain(port):
    async with serve(echo, "127.0.0.1", port, max_size=1 << 22, ping_interval=None):
        await asyncio.Future()


def main():
    run_async(amain(parse_args().port))


if __name__ == "__main__":
    main()
