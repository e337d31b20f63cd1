"""Quote prices with ``requests.get``: a new Session, pool and connection for every call."""

import os

import requests

SKUS = ("sku-1001", "sku-1002", "sku-1003")


def lambda_handler(event, context):
    base = os.environ["API_URL"]
    total = sum(requests.get(f"{base}/prices/{sku}", timeout=5).json()["cents"] for sku in SKUS)
    return {"total_cents": total}
