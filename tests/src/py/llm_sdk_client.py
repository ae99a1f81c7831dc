# Calls a server with the official `anthropic` and `ollama` SDKs, as a plan of calls.
# Usage: llm_sdk_client.py <base_url> <plan.json>; the plan is a list of
#   {"api": "anthropic" | "ollama_chat" | "ollama_generate", "key", "model", "words",
#    "max_tokens", "stream", "abort_after", "pause"}
# and one JSON line per call is printed: the status, the usage the SDK returned, the content
# tokens read.
import json
import sys
import time

import anthropic
import ollama

base_url, plan_path = sys.argv[1], sys.argv[2]
with open(plan_path) as f:
    plan = json.load(f)


def anthropic_call(call, out):
    client = anthropic.Anthropic(base_url=base_url, api_key=call["key"], max_retries=0,
                                 timeout=anthropic.Timeout(5.0, connect=1.0))
    args = dict(
        model=call["model"],
        max_tokens=call.get("max_tokens", 8),
        messages=[{"role": "user", "content": " ".join("word%d" % i for i in range(call.get("words", 3)))}],
    )
    try:
        if call.get("stream"):
            stream = client.messages.create(stream=True, **args)
            tokens, usage = 0, {}
            for ev in stream:
                if ev.type == "message_start":
                    usage.update(ev.message.usage.model_dump(exclude_none=True))
                elif ev.type == "message_delta":
                    usage.update(ev.usage.model_dump(exclude_none=True))
                elif ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                    tokens += 1
                    if call.get("abort_after") and tokens >= call["abort_after"]:
                        stream.close()
                        break
            out.update(status=200, tokens=tokens, usage=usage)
        else:
            r = client.messages.create(**args)
            out.update(status=200, usage=r.usage.model_dump(exclude_none=True))
    except anthropic.APIStatusError as e:
        out.update(status=e.status_code)
    except anthropic.APIConnectionError as e:
        out.update(status=0, error=type(e).__name__)


def ollama_call(call, out):
    client = ollama.Client(host=base_url, headers={"Authorization": "Bearer " + call["key"]}, timeout=5.0)
    text = " ".join("word%d" % i for i in range(call.get("words", 3)))
    options = {"num_predict": call.get("max_tokens", 8)}
    stream = bool(call.get("stream"))
    try:
        if call["api"] == "ollama_chat":
            r = client.chat(model=call["model"], messages=[{"role": "user", "content": text}],
                            stream=stream, options=options)
        else:
            r = client.generate(model=call["model"], prompt=text, stream=stream, options=options)
        if stream:
            tokens, last = 0, None
            for part in r:
                last = part
                content = part.message.content if call["api"] == "ollama_chat" else part.response
                if content:
                    tokens += 1
                    if call.get("abort_after") and tokens >= call["abort_after"]:
                        r.close()
                        break
            out.update(status=200, tokens=tokens)
            r = last
        else:
            out.update(status=200)
        if r is not None and r.done:
            out.update(usage={"prompt_eval_count": r.prompt_eval_count, "eval_count": r.eval_count})
    except ollama.ResponseError as e:
        out.update(status=e.status_code)
    except ConnectionError as e:
        out.update(status=0, error=type(e).__name__)


for call in plan:
    if call.get("pause"):
        time.sleep(call["pause"])
    out = {"api": call["api"], "model": call["model"]}
    if call["api"] == "anthropic":
        anthropic_call(call, out)
    else:
        ollama_call(call, out)
    print(json.dumps(out), flush=True)
