# Calls an OpenAI-compatible server with the official `openai` SDK, as a plan of calls.
# Usage: llm_client.py <base_url> <plan.json>; the plan is a list of
#   {"key", "model", "words", "max_tokens", "stream", "include_usage", "abort_after"}
# and one JSON line per call is printed: the status, the usage the SDK returned, the content
# tokens read.
import json
import sys
import time

import openai

base_url, plan_path = sys.argv[1], sys.argv[2]
with open(plan_path) as f:
    plan = json.load(f)

for call in plan:
    if call.get("pause"):
        time.sleep(call["pause"])
    client = openai.OpenAI(base_url=base_url, api_key=call["key"], max_retries=0, timeout=openai.Timeout(5.0, connect=1.0))
    args = dict(
        model=call["model"],
        messages=[{"role": "user", "content": " ".join("word%d" % i for i in range(call.get("words", 3)))}],
        max_tokens=call.get("max_tokens", 8),
    )
    out = {"model": call["model"]}
    try:
        if call.get("stream"):
            if call.get("include_usage"):
                args["stream_options"] = {"include_usage": True}
            stream = client.chat.completions.create(stream=True, **args)
            tokens = 0
            usage = None
            for ev in stream:
                if ev.usage is not None:
                    usage = ev.usage.model_dump()
                if ev.choices and ev.choices[0].delta.content:
                    tokens += 1
                    if call.get("abort_after") and tokens >= call["abort_after"]:
                        stream.close()
                        break
            out.update(status=200, tokens=tokens, usage=usage)
        else:
            r = client.chat.completions.create(**args)
            out.update(status=200, usage=r.usage.model_dump())
    except openai.APIStatusError as e:
        out.update(status=e.status_code)
    except openai.APIConnectionError as e:
        out.update(status=0, error=type(e).__name__)
    print(json.dumps(out), flush=True)
