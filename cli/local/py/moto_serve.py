"""Start moto's server for the edgehose tests, with Firehose and Kinesis resource checks on.

moto evaluates IAM policies for Firehose and Kinesis calls against the
resource "*", so a least-privilege policy that names one stream's ARN (the
only policy the edge should ever hold) would be denied everything. This
launcher gives those requests their real resource, the ARN of the stream
named in the request body, so such a policy is enforced as AWS enforces it:
allowed on its stream, denied on every other. And where moto asks IAM for
"sqs:SendMessageBatch", AWS asks for "sqs:SendMessage" (SQS's batch actions
are authorized as the single ones; IAM has no batch action to grant), so a
policy written for AWS works here as there. And a Kinesis shard numbers
each record as the highest number so far plus one, unlocked, so two PutRecords
handled at once by the server's threads can number two records alike and the
second overwrites the first: here a lock makes the numbering one at a time,
as AWS's sequence numbers are unique. Nothing else about moto changes.

Usage: python serve.py -H 127.0.0.1 -p PORT   (the same flags as moto_server)
"""

import json
import sys
import threading

from moto.firehose.responses import FirehoseResponse
from moto.kinesis.models import Shard
from moto.kinesis.responses import KinesisResponse
from moto.server import main
from moto.sqs.responses import SQSResponse


def _determine_resource(self):
    try:
        name = json.loads(self.body or "{}").get("DeliveryStreamName")
    except (TypeError, ValueError):
        name = None
    if not name:
        return "*"
    return f"arn:aws:firehose:{self.region}:{self.current_account}:deliverystream/{name}"


def _kinesis_resource(self):
    try:
        body = json.loads(self.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if body.get("StreamARN"):
        return body["StreamARN"]
    name = body.get("StreamName")
    if not name:
        return "*"
    return f"arn:aws:kinesis:{self.region}:{self.current_account}:stream/{name}"


FirehoseResponse._determine_resource = _determine_resource
KinesisResponse._determine_resource = _kinesis_resource

_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_sqs_authorize = SQSResponse._authenticate_and_authorize_normal_action


def _sqs_authorize_as_aws(self, resource="*"):
    action = self._get_action()
    self._get_action = lambda: _SQS_BATCH_ACTIONS.get(action, action)
    try:
        return _sqs_authorize(self, resource)
    finally:
        del self._get_action


SQSResponse._authenticate_and_authorize_normal_action = _sqs_authorize_as_aws

_numbering = threading.Lock()
_shard_put_record = Shard.put_record


def _put_record_one_at_a_time(self, *args, **kwargs):
    with _numbering:
        return _shard_put_record(self, *args, **kwargs)


Shard.put_record = _put_record_one_at_a_time

if __name__ == "__main__":
    main(sys.argv[1:])
