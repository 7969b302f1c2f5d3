"""Verifies captured BrightRun webhook deliveries with the official SDK's
client.webhooks.unwrap() (Standard Webhooks signature check + parsing).

Reads a JSON list of {"body": str, "headers": {...}} from argv[1]; the
secret from BR_WEBHOOK_SECRET. Prints one {"type", "id"} per delivery.
"""
import json
import os
import sys

from openai import OpenAI

client = OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
out = []
for d in json.load(open(sys.argv[1])):
    ev = client.webhooks.unwrap(d["body"], d["headers"], secret=os.environ["BR_WEBHOOK_SECRET"])
    out.append({"type": ev.type, "id": getattr(ev.data, "id", None)})
tampered = dict(json.load(open(sys.argv[1]))[0])
try:
    client.webhooks.unwrap(tampered["body"] + " ", tampered["headers"], secret=os.environ["BR_WEBHOOK_SECRET"])
    raise SystemExit("FAILED: a tampered body verified")
except Exception as e:  # InvalidWebhookSignatureError
    if type(e).__name__ != "InvalidWebhookSignatureError":
        raise
print(json.dumps(out))
