"""Builds an SNS client per invocation only to read its region (no API call): the build alone costs."""

import boto3


def lambda_handler(event, context):
    sns = boto3.client("sns")
    return {"region": sns.meta.region_name, "records": len(event.get("Records", []))}
