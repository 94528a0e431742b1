"""Apps for bench_adapters.py: hello world and a 5-route JSON app, as raw ASGI,
Starlette and Flask (the same routes and bodies in each)."""
from flask import Flask, jsonify, request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

HELLO = b"Hello, World!"
USERS = [{"id": i, "name": "user%d" % i, "tags": ["a", "b"]} for i in range(10)]


async def asgi_hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": HELLO})


def wsgi_hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]


async def _users(request):
    return JSONResponse(USERS)


async def _user(request):
    return JSONResponse(USERS[int(request.path_params["uid"]) % 10])


async def _search(request):
    q = request.query_params.get("q", "")
    return JSONResponse([u for u in USERS if q in u["name"]])


async def _health(request):
    return JSONResponse({"ok": True})


async def _echo(request):
    return JSONResponse({"path": request.url.path, "agent": request.headers.get("user-agent", "")})


starlette_json = Starlette(routes=[
    Route("/users", _users), Route("/users/{uid:int}", _user), Route("/search", _search),
    Route("/health", _health), Route("/echo", _echo)])

flask_json = Flask(__name__)


@flask_json.get("/users")
def f_users():
    return jsonify(USERS)


@flask_json.get("/users/<int:uid>")
def f_user(uid):
    return jsonify(USERS[uid % 10])


@flask_json.get("/search")
def f_search():
    q = request.args.get("q", "")
    return jsonify([u for u in USERS if q in u["name"]])


@flask_json.get("/health")
def f_health():
    return jsonify({"ok": True})


@flask_json.get("/echo")
def f_echo():
    return jsonify({"path": request.path, "agent": request.headers.get("User-Agent", "")})
