"""A module-level settings object whose boto3 Session is a functools.cached_property (built once)."""

import functools
import os

import boto3


class Settings:
    @functools.cached_property
    def session(self):
        return boto3.session.Session()

    @functools.cached_property
    def s3(self):
        return self.session.client("s3")


SETTINGS = Settings()


def lambda_handler(event, context):
    listing = SETTINGS.s3.list_objects_v2(Bucket=os.environ["BUCKET_NAME"], MaxKeys=5)
    return {"count": listing.get("KeyCount", 0)}
