"""Send a message to SQS with a new boto3 Session (and client) for every invocation."""

import json
import os

import boto3


def lambda_handler(event, context):
    session = boto3.session.Session()
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))
    return {"statusCode": 202}
