"""Hello-world server on uvicorn: a raw ASGI app, one worker, no access log.
uvicorn picks uvloop + httptools when installed (they are, in .venv-peers)."""
import uvicorn

from server_cli import parse_args

BODY = b"Hello, World!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
BODY_MSG = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(START)
    await send(BODY_MSG)


def main():
    args = parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, access_log=False,
                log_level="warning", lifespan="off", backlog=4096)


if __name__ == "__main__":
    main()
