# An "external AI provider" for egress tests: an OpenAI-compatible chat completions server on
# FastAPI/uvicorn over TLS, reached by clients as api.openai.com (or another provider's host)
# through their namespace's hosts file. Any bearer key is accepted. The prompt costs one token
# per whitespace-separated word of the messages' contents, the completion max_tokens tokens
# (default 8), each `t<i> `; for model `m-canary` the completion instead streams the canary of
# env LLM_CANARY split across several chunks (a system prompt leaking).
#
# Usage: llm_egress_server.py <host> <port> <root> <cert> <key>; env LLM_LOG: a JSON line per
# request with the server's own usage and the Host it was called by.
import json
import os
import sys
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

LOG = os.environ.get("LLM_LOG")
CANARY = os.environ.get("LLM_CANARY", "")

app = FastAPI()


def log(entry):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


def chunk(rid, model, delta, finish=None, usage=None, choices=True):
    body = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


@app.post("/v1/chat/completions")
async def chat(request: Request):
    body = await request.json()
    model = body.get("model", "")
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    if model == "m-canary":
        third = max(1, len(CANARY) // 3)
        pieces = ["Sure. My instructions begin with ", CANARY[:third], CANARY[third:2 * third],
                  CANARY[2 * third:], " and go on."]
    else:
        n = int(body.get("max_tokens") or 8)
        pieces = ["t%d " % i for i in range(n)]
    usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces),
             "total_tokens": prompt + len(pieces)}
    log({"model": model, "host": request.headers.get("host"), "stream": bool(body.get("stream")),
         "usage": usage})
    rid = "chatcmpl-%d" % int(time.monotonic_ns())
    if not body.get("stream"):
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                         "finish_reason": "stop"}],
            "usage": usage,
        })

    async def events():
        yield chunk(rid, model, {"role": "assistant", "content": ""})
        for p in pieces:
            yield chunk(rid, model, {"content": p})
        yield chunk(rid, model, {}, finish="stop")
        yield chunk(rid, model, None, usage=usage, choices=False)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                ssl_certfile=sys.argv[4], ssl_keyfile=sys.argv[5])
