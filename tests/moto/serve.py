"""Start moto's server for the edgehose tests, with Firehose resource checks on.

moto evaluates IAM policies for Firehose calls against the resource "*",
so a least-privilege policy that names one delivery stream's ARN (the only
policy the edge should ever hold) would be denied everything. This launcher
gives Firehose requests their real resource, the ARN of the stream named in
the request body, so such a policy is enforced as AWS enforces it: allowed
on its stream, denied on every other. Nothing else about moto changes.

Usage: python serve.py -H 127.0.0.1 -p PORT   (the same flags as moto_server)
"""

import json
import sys

from moto.firehose.responses import FirehoseResponse
from moto.server import main


def _determine_resource(self):
    try:
        name = json.loads(self.body or "{}").get("DeliveryStreamName")
    except (TypeError, ValueError):
        name = None
    if not name:
        return "*"
    return f"arn:aws:firehose:{self.region}:{self.current_account}:deliverystream/{name}"


FirehoseResponse._determine_resource = _determine_resource

if __name__ == "__main__":
    main(sys.argv[1:])
