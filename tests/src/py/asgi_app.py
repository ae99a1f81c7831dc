# A small ASGI app (no framework) served by hypercorn (HTTP/2 over TLS, ALPN h2) or uvicorn
# (HTTP/1.1, plaintext): python3 asgi_app.py <host> <port> <root> [<cert> <key>], with
# ASGI_SERVER=hypercorn|uvicorn in the environment.
#
#   GET  /json          200 application/json, the fixed JSON_BODY
#   POST /echo-length   reads the whole body, 200 text/plain "received <n>\n"
#   GET  /events        200 text/event-stream: SSE_CHUNKS, one body chunk each, 100 ms apart
#                       (exactly 5 events per the WHATWG dispatch rule), then the stream ends
#   anything else       404 text/plain "not found\n"
import asyncio, os, sys

JSON_BODY = b'{"ok": true, "items": [1, 2, 3], "name": "api-guard"}'
# Blocks that carry a data field are events (5); a comment-only block and a retry-only block
# are not; a multi-line data event is one event.
SSE_CHUNKS = [
    b": stream opened\n\n",
    b"id: 1\ndata: first\n\n",
    b"event: tick\ndata: second\n\n",
    b"data: line one\ndata: line two\ndata: line three\n\n",
    b"retry: 1000\n\n",
    b": a comment inside an event\ndata: fourth\n\n",
    b"data:fifth\n\n",
]
SSE_GAP = 0.1


async def read_body(receive):
    total = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return total
        total += len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return total


async def respond(scope, send, status, ctype, body):
    headers = [(b"content-type", ctype)]
    # HTTP/2: no content-length, so END_STREAM (which hypercorn sends in an empty DATA frame
    # after the body) is what ends the response and every client reads it; with a length,
    # curl finishes the transfer on the last body byte and may exit without reading it.
    if scope.get("http_version") != "2":
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    method, path = scope["method"], scope["path"]
    if method == "POST" and path == "/echo-length":
        n = await read_body(receive)
        await respond(scope, send, 200, b"text/plain", b"received %d\n" % n)
    elif method == "GET" and path == "/json":
        await respond(scope, send, 200, b"application/json", JSON_BODY)
    elif method == "GET" and path == "/events":
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        })
        for i, chunk in enumerate(SSE_CHUNKS):
            if i:
                await asyncio.sleep(SSE_GAP)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await read_body(receive)
        await respond(scope, send, 404, b"text/plain", b"not found\n")


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    cert, key = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
    server = os.environ.get("ASGI_SERVER", "hypercorn")
    if server == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = ["%s:%d" % (host, port)]
        config.certfile, config.keyfile = cert, key
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        config.loglevel = "WARNING"
        asyncio.run(serve(app, config))
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(app, host=host, port=port, http="h11", loop="asyncio", lifespan="off",
                    log_level="warning", access_log=False, ssl_certfile=cert, ssl_keyfile=key)
    else:
        sys.exit("unknown ASGI_SERVER %r" % server)


main()
