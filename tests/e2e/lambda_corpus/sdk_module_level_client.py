"""Module-level DynamoDB client, created once in the init phase and reused (the recommended pattern)."""

import os

import boto3

dynamodb = boto3.client("dynamodb")
TABLE_NAME = os.environ["TABLE_NAME"]


def lambda_handler(event, context):
    response = dynamodb.get_item(TableName=TABLE_NAME, Key={"id": {"S": event.get("id", "o-1")}})
    return {"statusCode": 200 if "Item" in response else 404}
