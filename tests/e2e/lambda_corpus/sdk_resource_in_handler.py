"""Put an order in DynamoDB; the resource and table are built inside the handler (every invocation)."""

import json
import os

import boto3


def lambda_handler(event, context):
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.Table(os.environ["TABLE_NAME"])
    order = {"id": event.get("id", "o-1"), "total": str(event.get("total", 42))}
    table.put_item(Item=order)
    return {"statusCode": 200, "body": json.dumps(order)}
