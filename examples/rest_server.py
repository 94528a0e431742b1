#!/usr/bin/env python3
"""RESTful JSON server: CRUD on a collection, URL routing, proper status codes.

Follows Mongoose's tutorial "tutorials/http/http-restful-server" (route with
``mg_match`` patterns, answer JSON with ``mg_http_reply``); here the routes
are ``match()`` patterns whose ``*`` captures become handler arguments.

Run it::

    python examples/rest_server.py

Try it::

    curl http://127.0.0.1:8000/api/items
    curl -d '{"name": "apple", "price": 1.5}' http://127.0.0.1:8000/api/items      # 201
    curl http://127.0.0.1:8000/api/items/1
    curl -X PUT -d '{"name": "pear"}' http://127.0.0.1:8000/api/items/1
    curl -X DELETE http://127.0.0.1:8000/api/items/1                                # 204
"""
from __future__ import annotations

import argparse
import json

from mongoose_py import Connection, Manager, match

items = {}       # id -> {"id": ..., "name": ..., ...}
next_id = [1]


def list_items(body):
    return 200, sorted(items.values(), key=lambda it: it["id"])


def create_item(body):
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return 400, {"error": "a JSON object with a string 'name' is required"}
    item = dict(body, id=next_id[0])
    items[item["id"]] = item
    next_id[0] += 1
    return 201, item


def get_item(body, item_id):
    return (200, items[item_id]) if item_id in items else (404, {"error": "no item %d" % item_id})


def update_item(body, item_id):
    if item_id not in items:
        return 404, {"error": "no item %d" % item_id}
    if not isinstance(body, dict):
        return 400, {"error": "a JSON object is required"}
    items[item_id].update(body, id=item_id)
    return 200, items[item_id]


def delete_item(body, item_id):
    return (204, None) if items.pop(item_id, None) else (404, {"error": "no item %d" % item_id})


# (pattern, {method: handler}); each "*" capture is passed on as an int id.
ROUTES = [
    ("/api/items", {"GET": list_items, "POST": create_item}),
    ("/api/items/*", {"GET": get_item, "PUT": update_item, "DELETE": delete_item}),
]


class Api(Connection):
    def on_http_msg(self, msg):
        for pattern, methods in ROUTES:
            ok, captures = match(msg.uri, pattern)
            if not ok:
                continue
            fn = methods.get(msg.method)
            if fn is None:
                return self.reply_json({"error": "method not allowed"}, 405,
                                       {"Allow": ", ".join(sorted(methods))})
            try:
                args = [int(c) for c in captures]
                body = json.loads(msg.body_bytes) if msg.body_bytes else None
            except ValueError:
                return self.reply_json({"error": "bad id or invalid JSON"}, 400)
            status, result = fn(body, *args)
            if status == 204:
                return self.reply(204, b"")
            headers = {"Location": "/api/items/%d" % result["id"]} if status == 201 else None
            return self.reply_json(result, status, headers)
        self.reply_json({"error": "not found"}, 404)


def main() -> None:
    ap = argparse.ArgumentParser(description="RESTful JSON CRUD server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = ap.parse_args()

    with Manager() as mgr:
        listener = mgr.listen("http://%s:%d" % (args.host, args.port), connection_class=Api)
        print("listening on http://%s:%d" % (args.host, listener.local_addr[1]), flush=True)
        mgr.run(shutdown_timeout=3)


if __name__ == "__main__":
    main()
