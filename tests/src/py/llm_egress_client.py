# A workload calling AI providers with the official `openai` SDK over TLS, trusting the test
# CA of env SSL_CERT_FILE. Usage: llm_egress_client.py <plan.json>; the plan is a list of
# {"base_url": null (the SDK's default, https://api.openai.com/v1) or a URL, "key", "model",
# "prompt", "stream", "max_tokens"}. Prints its pid, then one JSON line per call: the status and the usage
# the server reported.
import json
import os
import sys

import ssl

import httpx2
import openai

plan = json.load(open(sys.argv[1]))
print(json.dumps({"pid": os.getpid()}), flush=True)
ca = os.environ["SSL_CERT_FILE"]
for call in plan:
    http = httpx2.Client(verify=ssl.create_default_context(cafile=ca))
    kwargs = {"api_key": call["key"], "http_client": http, "max_retries": 0}
    if call.get("base_url"):
        kwargs["base_url"] = call["base_url"]
    client = openai.OpenAI(**kwargs)
    messages = [{"role": "user", "content": call["prompt"]}]
    try:
        if call.get("stream"):
            usage = None
            text = ""
            stream = client.chat.completions.create(
                model=call["model"], messages=messages, max_tokens=call.get("max_tokens"),
                stream=True, stream_options={"include_usage": True})
            for ev in stream:
                if ev.usage:
                    usage = ev.usage.model_dump()
                for c in ev.choices:
                    text += c.delta.content or ""
        else:
            r = client.chat.completions.create(
                model=call["model"], messages=messages, max_tokens=call.get("max_tokens"))
            usage = r.usage.model_dump()
            text = r.choices[0].message.content
        print(json.dumps({"status": 200, "usage": usage, "chars": len(text)}), flush=True)
    except openai.APIStatusError as e:
        print(json.dumps({"status": e.status_code}), flush=True)
    except openai.APIConnectionError as e:
        print(json.dumps({"status": 0, "error": str(e)}), flush=True)
    client.close()
