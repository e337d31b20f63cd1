"""Module-level DynamoDB Table resource, as in the serverless-patterns API Gateway examples."""

import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    item = {"id": event.get("id", "o-1"), "status": "NEW"}
    table.put_item(Item=item)
    return {"statusCode": 201, "body": json.dumps(item)}
