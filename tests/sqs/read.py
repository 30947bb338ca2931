"""Drain an SQS queue as a consumer would: boto3's ReceiveMessage (10 at a
time) until it comes back empty, deleting what it read.

Usage: python read.py ENDPOINT QUEUE_URL   (credentials in AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY). Prints a JSON list of messages in the order received:
{"body", "group_id", "deduplication_id", "receive_count"}.
"""

import json
import sys

import boto3


def main(endpoint, queue_url):
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    out = []
    while True:
        page = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        )
        messages = page.get("Messages", [])
        if not messages:
            break
        for m in messages:
            attributes = m.get("Attributes", {})
            out.append(
                {
                    "body": m["Body"],
                    "group_id": attributes.get("MessageGroupId"),
                    "deduplication_id": attributes.get("MessageDeduplicationId"),
                    "receive_count": int(attributes.get("ApproximateReceiveCount", "1")),
                }
            )
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
