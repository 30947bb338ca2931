"""The Firehose transformation as AWS's Python blueprints write it, for the
transform benchmark: json + the jsonschema package, run in-process on the
same event file as the Rust handler, with the same rules (schema v1 checked
with a JSON Schema, valid events flattened, invalid ones rejected with their
reasons, records answered Ok / ProcessingFailed / Dropped).

    python transform.py EVENT.json ITERATIONS   -> one JSON line of results
"""

import base64
import json
import resource
import sys
import time

from jsonschema import Draft202012Validator

V1 = {
    "type": "object",
    "additionalProperties": False,
    "required": ["event"],
    "properties": {
        "event": {"type": "string", "minLength": 1, "maxLength": 128},
        "ts": {"type": ["string", "integer", "null"]},
        "sent_at": {"type": ["string", "integer", "null"]},
        "message_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 100},
        "anonymous_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 256},
        "user_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 256},
        "url": {"type": ["string", "null"], "maxLength": 2048},
        "referrer": {"type": ["string", "null"], "maxLength": 2048},
        "target": {"type": ["string", "null"], "maxLength": 512},
        "properties": {"type": ["object", "null"]},
    },
}
VALIDATOR = Draft202012Validator(V1)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def handler(event, _context=None):
    out = []
    for record in event["records"]:
        data = base64.b64decode(record["data"]).decode("utf-8", "replace")
        lines = [l for l in data.split("\n") if l.strip()]
        if not lines:
            out.append({"recordId": record["recordId"], "result": "Dropped", "data": ""})
            continue
        valid, rejected = [], []
        for line in lines:
            try:
                env = json.loads(line)
            except ValueError as e:
                rejected.append(json.dumps({"rejected": [{"reason": "not_an_envelope", "message": str(e)}], "envelope": line}))
                continue
            ev = env.get("event")
            if ev is None:
                rejected.append(json.dumps({"id": env.get("id"), "rejected": [{"reason": "quarantined"}], "envelope": env}))
                continue
            errors = [{"reason": e.validator, "field": "/" + "/".join(map(str, e.path)), "message": e.message} for e in VALIDATOR.iter_errors(ev)]
            if errors:
                rejected.append(json.dumps({"id": env["id"], "rejected": errors, "envelope": env}))
                continue
            edge = env.get("edge") or {}
            flat = {"id": env["id"], "event": ev["event"], "event_time": iso(env["event_time"]), "received_at": iso(env["received_at"])}
            for k in ("message_id", "anonymous_id", "user_id", "url", "referrer", "target"):
                if ev.get(k) is not None:
                    flat[k] = ev[k]
            for k in ("country", "colo", "asn"):
                if k in edge:
                    flat[k] = edge[k]
            if env.get("key_id"):
                flat["key_id"] = env["key_id"]
            if ev.get("properties") is not None:
                flat["properties"] = ev["properties"]
            valid.append(json.dumps(flat, separators=(",", ":")))
        if valid:
            body = "\n".join(valid + rejected) + "\n"
            out.append({"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(body.encode()).decode()})
        else:
            out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
    return {"records": out}


def main():
    path, iterations = sys.argv[1], int(sys.argv[2])
    raw = open(path, "rb").read()
    events = 0
    start = time.perf_counter()
    for _ in range(iterations):
        event = json.loads(raw)
        response = json.dumps(handler(event))
        events = sum(base64.b64decode(r["data"]).count(b"\n") for r in event["records"])
    secs = time.perf_counter() - start
    print(json.dumps({
        "events": events * iterations,
        "bytes": len(raw) * iterations,
        "seconds": secs,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "response_bytes": len(response),
    }))


if __name__ == "__main__":
    main()
