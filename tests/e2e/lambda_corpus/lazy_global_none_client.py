"""``global _client; if _client is None``: the SQS client is built lazily by the first invocation."""

import json
import os

import boto3

_client = None


def get_client():
    global _client
    if _client is None:
        _client = boto3.client("sqs")
    return _client


def lambda_handler(event, context):
    get_client().send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))
    return {"statusCode": 202}
