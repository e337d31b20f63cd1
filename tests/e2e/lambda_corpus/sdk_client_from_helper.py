"""List objects of a bucket through a helper that builds a new S3 client on each call."""

import os

import boto3


def get_s3_client():
    return boto3.client("s3")


def lambda_handler(event, context):
    s3 = get_s3_client()
    listing = s3.list_objects_v2(Bucket=os.environ["BUCKET_NAME"], MaxKeys=10)
    return {"statusCode": 200, "count": listing.get("KeyCount", 0)}
