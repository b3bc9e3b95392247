"""moto's S3 server for tests (plain helpers; the fixtures are in tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# moto accepts any key; these only have to be consistent between the bucket's creator and the site.
CLIENT_OPTIONS = {"access_key": "testing", "secret_key": "testing"}
REGION = "us-east-1"


def moto_server_start(log: Path) -> tuple[subprocess.Popen, str]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        reason = "moto[s3,server] is not installed (pip install -r requirements.txt installs it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{reason}: CI must run the S3 tests")
        pytest.skip(reason)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto_server exited ({server.returncode}): {log.read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, url
        except OSError:
            time.sleep(0.2)
    moto_server_stop(server)
    raise RuntimeError(f"moto_server did not listen on {url} within 60 s: {log.read_text()[-500:]}")


def moto_server_stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def bucket_create(endpoint_url: str) -> tuple[str, str, dict]:
    import boto3

    bucket = f"shop-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=CLIENT_OPTIONS["access_key"],
        aws_secret_access_key=CLIENT_OPTIONS["secret_key"],
    )
    client.create_bucket(Bucket=bucket)
    return endpoint_url, bucket, dict(CLIENT_OPTIONS)


def bucket_keys(endpoint_url: str, bucket: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=CLIENT_OPTIONS["access_key"],
        aws_secret_access_key=CLIENT_OPTIONS["secret_key"],
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
