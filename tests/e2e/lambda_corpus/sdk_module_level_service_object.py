"""A service object with its S3 and SQS clients, built once at module level."""

import json
import os

import boto3


class Notifier:
    def __init__(self):
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")

    def notify(self, event):
        self.sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))


NOTIFIER = Notifier()


def lambda_handler(event, context):
    NOTIFIER.notify(event)
    return {"statusCode": 202}
