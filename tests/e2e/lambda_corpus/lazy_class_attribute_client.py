"""A lazily initialised class attribute holds the DynamoDB resource for every later instance."""

import os

import boto3


class Orders:
    _table = None

    @classmethod
    def table(cls):
        if cls._table is None:
            cls._table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
        return cls._table

    def save(self, order_id):
        self.table().put_item(Item={"id": order_id})


def lambda_handler(event, context):
    Orders().save(event.get("id", "o-1"))
    return {"statusCode": 201}
