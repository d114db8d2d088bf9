"""For each record (an SQS message's body, or a table stream record's item "mark"): marks it
as started in RENDEZVOUS_DIR, waits (at most WAIT_SECONDS) until every name in EXPECTED has
started, then reports which had to RESULT_QUEUE_URL."""

import json
import os
import time
from pathlib import Path

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    place = Path(os.environ["RENDEZVOUS_DIR"])
    expected = set(os.environ["EXPECTED"].split(","))
    for record in event["Records"]:
        name = record["body"] if "body" in record else record["dynamodb"]["NewImage"]["mark"]["S"]
        (place / name).touch()
        give_up = time.monotonic() + float(os.environ["WAIT_SECONDS"])
        while time.monotonic() < give_up and not expected <= set(os.listdir(place)):
            time.sleep(0.02)
        report = {"body": name, "started": sorted(os.listdir(place))}
        sqs.send_message(QueueUrl=os.environ["RESULT_QUEUE_URL"], MessageBody=json.dumps(report))
    return {}
