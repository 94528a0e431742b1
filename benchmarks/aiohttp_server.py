"""Hello-world server on aiohttp (default asyncio loop, one process)."""
from aiohttp import web

from server_cli import parse_args


async def hello(request):
    return web.Response(text="Hello, World!")


def main():
    args = parse_args()
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
