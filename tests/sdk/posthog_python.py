"""Drives posthog (PyPI), unchanged, against an edgehose endpoint: a custom
event, one with its own timestamp, person properties ($set), an alias and a
group, then a flush. Prints one JSON line per event ({"event", "uuid"}, the
uuid the SDK returns); exits 1 if the SDK reported an error.

  EDGEHOSE_HOST=http://127.0.0.1:8787 EDGEHOSE_TOKEN=... EDGEHOSE_RUN=r1 python tests/sdk/posthog_python.py
EDGEHOSE_GZIP=1 sends gzip; POSTHOG_CAPTURE_MODE=v1 (the SDK's own switch)
sends to /i/v1/analytics/events.
"""

import json
import os
import sys
from datetime import datetime, timezone

from posthog import Posthog

host = os.environ["EDGEHOSE_HOST"]
token = os.environ["EDGEHOSE_TOKEN"]
run = os.environ.get("EDGEHOSE_RUN", "run")
failures = []

client = Posthog(
    token,
    host=host,
    gzip=os.environ.get("EDGEHOSE_GZIP") == "1",
    max_retries=1,
    on_error=lambda error, batch: failures.append(f"{error} ({len(batch)} events)"),
)
user = f"user-{run}"
sent = [
    ("order completed", client.capture("order completed", distinct_id=user, properties={"total": 9.5, "run": run})),
    (
        "imported",
        client.capture(
            "imported",
            distinct_id=user,
            properties={"run": run},
            timestamp=datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc),
        ),
    ),
    ("$set", client.set(distinct_id=user, properties={"plan": "pro"})),
    ("$create_alias", client.alias(user, f"alias-{run}")),
    ("$groupidentify", client.group_identify("company", f"acme-{run}", {"seats": 3})),
]
client.flush()
client.shutdown()
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
for event, uuid in sent:
    print(json.dumps({"event": event, "uuid": str(uuid)}))
