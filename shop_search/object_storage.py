"""The STORAGES entries for one S3-compatible bucket (MEDIA_STORAGE=s3, docs/deployment.md): media,
private import uploads and shipped index builds under three prefixes. Plain dicts, no Django import:
the settings module builds them from the environment, the tests from moto's S3 server."""

from __future__ import annotations

from typing import Any

S3_BACKEND = "storages.backends.s3.S3Storage"


def s3_storages(
    *,
    bucket: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    custom_domain: str | None = None,
    querystring_auth: bool | None = None,
    **client: Any,
) -> dict[str, dict]:
    """{"default", "imports", "index"} on ``bucket`` (``client``: more S3Storage options, e.g. keys in
    tests; production leaves credentials to boto3's own chain: environment, instance role...)."""

    def entry(location: str, **options: Any) -> dict:
        return {
            "BACKEND": S3_BACKEND,
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint_url,
                "region_name": region,
                "location": location,
                # Never overwrite by default: two different files with one name both stay.
                "file_overwrite": False,
                "default_acl": None,  # the bucket's policy decides
                "querystring_auth": True,
                **client,
                **options,
            },
        }

    return {
        # Media URLs are signed and expiring by default (flagged photos and kept query photos are
        # private); with a CDN domain in front of the public prefixes they are plain URLs.
        "default": entry(
            "media",
            custom_domain=custom_domain,
            querystring_auth=custom_domain is None if querystring_auth is None else querystring_auth,
        ),
        "imports": entry("private/imports"),
        # The pointer to the published build (current.json) is replaced in place.
        "index": entry("index", file_overwrite=True),
    }
