"""The S3 client comes from a functools.lru_cache helper: built on the first invocation, then reused."""

import functools
import os

import boto3


@functools.lru_cache(maxsize=1)
def s3_client():
    return boto3.client("s3")


def lambda_handler(event, context):
    listing = s3_client().list_objects_v2(Bucket=os.environ["BUCKET_NAME"], MaxKeys=5)
    return {"count": listing.get("KeyCount", 0)}
