"""Read every record of a Kinesis data stream back, as a consumer would.

boto3 (moto's dependency) lists the shards and reads each from TRIM_HORIZON
with GetRecords; awslabs' aws-kinesis-agg de-aggregates KPL aggregated
records into their user records. Neither is edgehose code, so what this
prints is what a real consumer of the stream would see.

Usage: python read.py ENDPOINT STREAM   (credentials in AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY). Prints a JSON list of user records, shard by shard
in sequence order: {"shard", "sequence", "partition_key",
"explicit_hash_key", "aggregated", "data" (base64)}.
"""

import base64
import json
import sys

import boto3
from aws_kinesis_agg.deaggregator import iter_deaggregate_records


def main(endpoint, stream):
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    shards = client.list_shards(StreamName=stream)["Shards"]
    out = []
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=1000)
            if not page["Records"]:
                break
            for record in page["Records"]:
                for user in iter_deaggregate_records(record, data_format="Boto3"):
                    k = user["kinesis"]
                    aggregated = bool(k.get("aggregated"))
                    # De-aggregated data comes back in base64, the rest as bytes.
                    data = k["data"] if aggregated else base64.b64encode(k["data"])
                    out.append(
                        {
                            "shard": shard["ShardId"],
                            "sequence": k["sequenceNumber"],
                            "partition_key": k["partitionKey"],
                            "explicit_hash_key": k.get("explicitHashKey"),
                            "aggregated": aggregated,
                            "data": data.decode() if isinstance(data, bytes) else data,
                        }
                    )
            iterator = page.get("NextShardIterator")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
