"""A Step Functions `.waitForTaskToken` task: hands the token on (via SQS) and returns."""

import json
import os

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    sqs.send_message(QueueUrl=os.environ["RESULT_QUEUE_URL"], MessageBody=json.dumps(event))
    return {"token_sent": True}
