"""A repository class whose constructor builds the DynamoDB client, instantiated per invocation."""

import os

import boto3


class OrderRepository:
    def __init__(self, table_name):
        self.client = boto3.client("dynamodb")
        self.table_name = table_name

    def get(self, order_id):
        item = self.client.get_item(TableName=self.table_name, Key={"id": {"S": order_id}})
        return item.get("Item")


def lambda_handler(event, context):
    repository = OrderRepository(os.environ["TABLE_NAME"])
    found = repository.get(event.get("id", "o-1"))
    return {"statusCode": 200 if found else 404}
