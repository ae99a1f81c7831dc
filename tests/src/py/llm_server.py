# An OpenAI-compatible chat completions server on FastAPI/uvicorn that streams like vLLM:
# a role-only first chunk, one chunk per token, a finish chunk with an empty delta, then
# (with stream_options.include_usage) a usage chunk with empty choices, then [DONE].
# Also `GET /v1/models`. Keys: the two fixed ones and any `sk-live-…` one; others are a 401.
# Deterministic: the prompt costs one token per whitespace-separated word of the messages'
# contents, the completion max_tokens tokens (default 8), each `t<i> `. The first content
# token waits FIRST_TOKEN_MS (prefill), the next ones TOKEN_MS apart.
#
# Usage: llm_server.py <host> <port> <root>; env LLM_LOG: a JSON line per request with the
# server's own usage, first-token time and (streams) the tokens it got out before the client
# went away.
import asyncio
import contextlib
import json
import os
import sys
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.responses import StreamingResponse as _StreamingResponse


class StreamingResponse(_StreamingResponse):
    """Closes its body generator when the client goes away, so the generator's `finally`
    (which logs what was sent) runs at once rather than whenever the garbage collector
    reaches it: Starlette leaves an interrupted generator suspended."""

    async def stream_response(self, send):
        async with contextlib.aclosing(self.body_iterator):
            await super().stream_response(send)

KEYS = {"sk-alpha-0123456789abcdef", "sk-beta-0123456789abcdef"}
FIRST_TOKEN_MS = 150
TOKEN_MS = 5
LOG = os.environ.get("LLM_LOG")

app = FastAPI()


def log(entry):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


@app.middleware("http")
async def received_at(request: Request, call_next):
    # As early as the app sees the request: the server's reference for time to first token.
    request.state.t0 = time.monotonic()
    return await call_next(request)


def chunk(rid, model, delta, finish=None, usage=None, choices=True):
    body = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
    }
    if usage is not None or choices:
        body["usage"] = usage
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


def valid(auth):
    # The fixed keys, and any `sk-live-…` key (many valid keys for the key-abuse tests).
    key = auth[7:] if auth.startswith("Bearer ") else ""
    return key in KEYS or key.startswith("sk-live-")


@app.get("/v1/models")
async def models(request: Request):
    if not valid(request.headers.get("authorization", "")):
        return JSONResponse(status_code=401, content={"error": {"message": "Incorrect API key provided",
                                                                "code": "invalid_api_key"}})
    return JSONResponse({"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "test"} for m in ("m-a", "m-b")]})


@app.post("/v1/chat/completions")
async def chat(request: Request):
    auth = request.headers.get("authorization", "")
    body = await request.json()
    model = body.get("model", "")
    if not valid(auth):
        log({"model": model, "status": 401})
        return JSONResponse(
            status_code=401,
            content={"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                               "param": None, "code": "invalid_api_key"}},
        )
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    n = int(body.get("max_tokens") or 8)
    usage = {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}
    rid = "chatcmpl-%d" % int(time.monotonic_ns())
    t0 = request.state.t0
    if not body.get("stream"):
        await asyncio.sleep(FIRST_TOKEN_MS / 1000)
        log({"model": model, "status": 200, "stream": False, "usage": usage})
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join("t%d " % i for i in range(n))},
                         "logprobs": None, "finish_reason": "length"}],
            "usage": usage,
        })
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def events():
        sent = 0
        first_ms = None
        try:
            yield chunk(rid, model, {"role": "assistant", "content": ""})
            for i in range(n):
                await asyncio.sleep((FIRST_TOKEN_MS if i == 0 else TOKEN_MS) / 1000)
                if i == 0:
                    first_ms = (time.monotonic() - t0) * 1000
                yield chunk(rid, model, {"content": "t%d " % i})
                # Resumed: the chunk went out.
                sent += 1
            yield chunk(rid, model, {}, finish="length")
            if include_usage:
                yield chunk(rid, model, None, usage=usage, choices=False)
            yield "data: [DONE]\n\n"
        finally:
            log({"model": model, "status": 200, "stream": True, "include_usage": include_usage,
                 "usage": usage, "sent": sent, "first_token_ms": first_ms})

    return StreamingResponse(events(), media_type="text/event-stream")


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
