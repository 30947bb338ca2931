"""Drives a Python Segment SDK, unchanged, against an edgehose endpoint: one
of each Segment call, then a flush. Prints one JSON line per call
({"type", "messageId"}); exits 1 if the SDK reported an error.

    python tests/sdk/segment-python.py segment|rudder HOST WRITE_KEY RUN [--gzip]

`segment` is segment-analytics-python (module segment.analytics); `rudder` is
rudder-sdk-python (module rudderstack.analytics), which gzips by default.
"""
import datetime
import json
import sys

sdk, host, write_key, run = sys.argv[1:5]
options = {"host": host, "max_retries": 3}
if "--gzip" in sys.argv:
    options["gzip"] = True
if sdk == "segment":
    from segment.analytics import Client
elif sdk == "rudder":
    from rudderstack.analytics import Client
else:
    sys.exit(f"unknown sdk {sdk!r}: expected segment or rudder")

errors = []
client = Client(write_key, on_error=lambda e, batch: errors.append(repr(e)), **options)
user = f"user-{run}"
calls = [
    ("track", dict(user_id=user, event="Order Completed", properties={"revenue": 9.5, "run": run})),
    ("identify", dict(user_id=user, traits={"email": f"{run}@shop.example"})),
    ("page", dict(anonymous_id=f"anon-{run}", name="Home", category="Docs", properties={"path": "/"})),
    ("screen", dict(user_id=user, name="Settings")),
    ("group", dict(user_id=user, group_id=f"acme-{run}", traits={"employees": 40})),
    ("alias", dict(previous_id=f"anon-{run}", user_id=user)),
    ("track", dict(user_id=user, event="Imported",
                   timestamp=datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc))),
]
sent = []
for method, params in calls:
    ok, msg = getattr(client, method)(**params)
    if not ok:
        errors.append(f"{method}: not queued")
    sent.append({"type": method, "messageId": msg["messageId"]})
client.flush()
client.join()
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
for s in sent:
    print(json.dumps(s))
