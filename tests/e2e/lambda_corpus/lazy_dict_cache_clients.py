"""Clients cached in a dict by service name, filled on first use."""

import os

import boto3

_CLIENTS = {}


def client_for(service):
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service)
    return _CLIENTS[service]


def lambda_handler(event, context):
    table = os.environ["TABLE_NAME"]
    item = client_for("dynamodb").get_item(TableName=table, Key={"id": {"S": event.get("id", "o-1")}})
    return {"found": "Item" in item}
