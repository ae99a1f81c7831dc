# Plays an LLM key-abuse plan with the official `openai` SDK: each call names its own server URL
# (so one client namespace reaches the server from several addresses), its key and either a
# chat completion or a model list.
# Usage: llm_abuse_client.py <plan.json>; the plan is a list of
#   {"op": "chat"|"models", "base_url", "key", "model", "words", "max_tokens", "pause"}
# (a chat with "prompt" sends a system message, then the prompt as the user's message)
# and one JSON line per call is printed: {"status": …} (0: no connection).
import json
import sys
import time

import openai

with open(sys.argv[1]) as f:
    plan = json.load(f)

for call in plan:
    if call.get("pause"):
        time.sleep(call["pause"])
    client = openai.OpenAI(base_url=call["base_url"], api_key=call["key"], max_retries=0,
                           timeout=openai.Timeout(5.0, connect=1.0))
    out = {}
    try:
        if call["op"] == "models":
            out.update(status=200, models=[m.id for m in client.models.list()])
        else:
            if "prompt" in call:
                messages = [{"role": "system", "content": "You are a helpful assistant."},
                            {"role": "user", "content": call["prompt"]}]
            else:
                messages = [{"role": "user", "content": " ".join("word%d" % i for i in range(call.get("words", 3)))}]
            r = client.chat.completions.create(
                model=call["model"],
                messages=messages,
                max_tokens=call.get("max_tokens", 8),
            )
            out.update(status=200, usage=r.usage.model_dump())
    except openai.APIStatusError as e:
        out.update(status=e.status_code)
    except openai.APIConnectionError as e:
        out.update(status=0, error=type(e).__name__)
    print(json.dumps(out), flush=True)
