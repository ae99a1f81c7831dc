# A server shaped like Anthropic's Messages API and Ollama's chat/generate API, on
# FastAPI/uvicorn, for the official `anthropic` and `ollama` SDKs.
#
# - Anthropic `/v1/messages` (key in `x-api-key` or as a bearer token): a JSON message, or an event stream exactly
#   like Anthropic's: message_start (usage: input tokens, output_tokens 1), content_block_start,
#   ping, one content_block_delta per token, content_block_stop, message_delta with the
#   cumulative usage (output_tokens counts the whole answer, not what came since
#   message_start), message_stop.
# - Ollama `/api/chat` and `/api/generate` (key as `Authorization: Bearer`, like Ollama's
#   hosted API): one JSON object, or NDJSON (`application/x-ndjson`) with one line per token
#   and a final `done` line with `prompt_eval_count` / `eval_count`. Model `m-nocount` leaves
#   out `prompt_eval_count` (as Ollama does when the whole prompt came from its cache),
#   `m-nousage` both counts.
#
# Deterministic: the prompt costs one token per whitespace-separated word of the messages'
# contents (and the system prompt), the answer `max_tokens` / `num_predict` tokens (default
# 8), each `t<i> `; model `m-cached` reports 10 more prompt tokens read from a cache. The
# first token waits FIRST_TOKEN_MS (prefill), the next ones TOKEN_MS apart.
#
# Usage: llm_sdk_server.py <host> <port> <root>; env LLM_LOG: a JSON line per request with the
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
CACHED = 10
LOG = os.environ.get("LLM_LOG")
CREATED_AT = "2026-12-06T04:00:00.000000000Z"

app = FastAPI()


def log(entry):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


def words(v):
    if isinstance(v, str):
        return len(v.split())
    if isinstance(v, list):
        return sum(words(p.get("text", "") if isinstance(p, dict) else p) for p in v)
    return 0


def sse(kind, data):
    return "event: %s\ndata: %s\n\n" % (kind, json.dumps(data, separators=(",", ":")))


async def tokens(n, state):
    """Yields the answer's tokens at the server's pace, noting the first one's time."""
    for i in range(n):
        await asyncio.sleep((FIRST_TOKEN_MS if i == 0 else TOKEN_MS) / 1000)
        if i == 0:
            state["first_ms"] = (time.monotonic() - state["t0"]) * 1000
        yield "t%d " % i
        # Resumed: the token went out.
        state["sent"] += 1


@app.post("/v1/messages")
async def messages(request: Request):
    body = await request.json()
    # The whole request is in (clients may send the body after the head): the server's
    # reference for time to first token, as the agent's is the request's end.
    t0 = time.monotonic()
    model = body.get("model", "")
    # The key as `x-api-key`, or as a bearer token (what the SDK sends).
    auth = request.headers.get("authorization", "")
    key = request.headers.get("x-api-key") or (auth[7:] if auth.startswith("Bearer ") else None)
    if key not in KEYS:
        log({"api": "anthropic", "model": model, "status": 401})
        return JSONResponse(
            status_code=401,
            content={"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
        )
    prompt = sum(words(m.get("content", "")) for m in body.get("messages", [])) + words(body.get("system", ""))
    n = int(body.get("max_tokens") or 8)
    cached = CACHED if model == "m-cached" else 0
    usage = {"input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}
    mid = "msg_%d" % time.monotonic_ns()
    state = {"t0": t0, "sent": 0, "first_ms": None}
    own = {"prompt": prompt, "completion": n, "cached": cached}
    if not body.get("stream"):
        text = "".join([t async for t in tokens(n, state)])
        log({"api": "anthropic", "model": model, "status": 200, "stream": False, "usage": own})
        return JSONResponse({
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens", "stop_sequence": None,
            "usage": dict(usage, output_tokens=n),
        })

    async def events():
        try:
            yield sse("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": dict(usage, output_tokens=1)}})
            yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "text", "text": ""}})
            yield sse("ping", {"type": "ping"})
            async for t in tokens(n, state):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": t}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield sse("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                                        "usage": dict(usage, output_tokens=n)})
            yield sse("message_stop", {"type": "message_stop"})
        finally:
            log({"api": "anthropic", "model": model, "status": 200, "stream": True, "usage": own,
                 "sent": state["sent"], "first_token_ms": state["first_ms"]})

    return StreamingResponse(events(), media_type="text/event-stream")


def ollama_counts(model, prompt, n):
    out = {"total_duration": 2000000, "load_duration": 100000, "prompt_eval_duration": 500000,
           "eval_duration": 1000000}
    if model not in ("m-nocount", "m-nousage"):
        out["prompt_eval_count"] = prompt
    if model != "m-nousage":
        out["eval_count"] = n
    return out


async def ollama(request: Request, api: str):
    body = await request.json()
    t0 = time.monotonic()
    model = body.get("model", "")
    if request.headers.get("authorization", "")[7:] not in KEYS:
        log({"api": api, "model": model, "status": 401})
        return JSONResponse(status_code=401, content={"error": "unauthorized"})
    if api == "ollama_chat":
        prompt = sum(words(m.get("content", "")) for m in body.get("messages", []))
    else:
        prompt = words(body.get("prompt", "")) + words(body.get("system", ""))
    n = int((body.get("options") or {}).get("num_predict") or 8)
    state = {"t0": t0, "sent": 0, "first_ms": None}
    own = {"prompt": prompt, "completion": n, "cached": 0}

    def line(text, done):
        out = {"model": model, "created_at": CREATED_AT}
        if api == "ollama_chat":
            out["message"] = {"role": "assistant", "content": text}
        else:
            out["response"] = text
        out["done"] = done
        if done:
            out["done_reason"] = "length"
            if api == "ollama_generate":
                out["context"] = [1, 2, 3]
            out.update(ollama_counts(model, prompt, n))
        return out

    if body.get("stream") is False:
        text = "".join([t async for t in tokens(n, state)])
        log({"api": api, "model": model, "status": 200, "stream": False, "usage": own})
        return JSONResponse(line(text, True))

    async def lines():
        try:
            async for t in tokens(n, state):
                yield json.dumps(line(t, False), separators=(",", ":")) + "\n"
            yield json.dumps(line("", True), separators=(",", ":")) + "\n"
        finally:
            log({"api": api, "model": model, "status": 200, "stream": True, "usage": own,
                 "sent": state["sent"], "first_token_ms": state["first_ms"]})

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@app.post("/api/chat")
async def chat(request: Request):
    return await ollama(request, "ollama_chat")


@app.post("/api/generate")
async def generate(request: Request):
    return await ollama(request, "ollama_generate")


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
