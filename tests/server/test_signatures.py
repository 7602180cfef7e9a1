"""AccessPolicy with registered secrets: a tenant key id is worthless without its secret.

Every request goes through a stock boto3 client (botocore signs it), so these tests also prove the
endpoint recomputes botocore's SigV4 signature exactly: over the path, query string, signed headers
and body as sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from s3vectors_engine.server import AccessPolicy, LocalEndpoint
from s3vectors_engine.server._sigv4 import SignedRequest, check_signature

BUCKET = "signed-bucket"
REGION = "us-east-1"
SECRETS = {"AKIA_ADMIN": "admin-secret", "AKIA_TENANT_A": "tenant-a-secret"}
POLICY = AccessPolicy(
    indexes={"AKIA_ADMIN": ["*"], "AKIA_TENANT_A": ["memory-a"], "AKIA_LEGACY": ["memory-a"]},
    bucket_operations={"AKIA_ADMIN": ["*"]},
    secret_keys=SECRETS,
)
_VECTOR = {"float32": [1.0, 0.0, 0.0]}


def _client(url: str, key: str, secret: str, token: str | None = None) -> Any:
    return boto3.client("s3vectors", endpoint_url=url, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalEndpoint(tmp_path_factory.mktemp("signed"), access_policy=POLICY) as endpoint:
        admin = _client(endpoint.url, "AKIA_ADMIN", SECRETS["AKIA_ADMIN"])
        admin.create_vector_bucket(vectorBucketName=BUCKET)
        admin.create_index(vectorBucketName=BUCKET, indexName="memory-a", dataType="float32", dimension=3,
                           distanceMetric="cosine")
        admin.put_vectors(vectorBucketName=BUCKET, indexName="memory-a",
                          vectors=[{"key": "a-secret", "data": _VECTOR, "metadata": {"note": "ünïcode ✓"}}])
        yield endpoint.url


def _error(call: Any) -> tuple[int, str]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_correctly_signed_requests_pass_with_and_without_a_session_token(url: str) -> None:
    tenant = _client(url, "AKIA_TENANT_A", SECRETS["AKIA_TENANT_A"], token="FQoGZXIvYXdzE-session")
    hits = tenant.query_vectors(vectorBucketName=BUCKET, indexName="memory-a", queryVector=_VECTOR, topK=3,
                                filter={"note": "ünïcode ✓"}, returnMetadata=True)
    assert [v["key"] for v in hits["vectors"]] == ["a-secret"]
    # A paginated call signs a query string too.
    admin = _client(url, "AKIA_ADMIN", SECRETS["AKIA_ADMIN"])
    assert admin.list_vectors(vectorBucketName=BUCKET, indexName="memory-a", maxResults=1)["vectors"]


def test_a_known_key_id_with_the_wrong_secret_is_refused(url: str) -> None:
    thief = _client(url, "AKIA_TENANT_A", "guessed-secret")
    status, code = _error(lambda: thief.query_vectors(vectorBucketName=BUCKET, indexName="memory-a",
                                                      queryVector=_VECTOR, topK=3))
    assert (status, code) == (403, "InvalidSignatureException")
    # ... even for the admin key, whose policy would allow everything.
    forged_admin = _client(url, "AKIA_ADMIN", "guessed-secret")
    status, code = _error(lambda: forged_admin.delete_index(vectorBucketName=BUCKET, indexName="memory-a"))
    assert (status, code) == (403, "InvalidSignatureException")
    admin = _client(url, "AKIA_ADMIN", SECRETS["AKIA_ADMIN"])
    assert admin.get_index(vectorBucketName=BUCKET, indexName="memory-a")["index"]["indexName"] == "memory-a"


def test_keys_without_a_registered_secret_keep_the_trusting_behaviour(url: str) -> None:
    legacy = _client(url, "AKIA_LEGACY", "anything")
    assert legacy.get_index(vectorBucketName=BUCKET, indexName="memory-a")["index"]["indexName"] == "memory-a"


def _signed(body: bytes, when: dt.datetime, secret: str = "s3cret") -> SignedRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:9/QueryVectors", data=body,
                         headers={"Content-Type": "application/json"})
    signer = SigV4Auth(Credentials("AKIA_T", secret), "s3vectors", REGION)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    scope = f"AKIA_T/{request.context['timestamp'][:8]}/{REGION}/s3vectors/aws4_request"
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:9"
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={scope}, "
                                f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
                                f"Signature={signature}")
    return SignedRequest(method="POST", raw_path="/QueryVectors", raw_query="",
                         headers=headers, body=body)


def test_tampered_bodies_stale_dates_and_malformed_headers_are_refused() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    good = _signed(b'{"topK":3}', now)
    assert check_signature(good, "AKIA_T", "s3cret") is None
    tampered = SignedRequest(**{**good.__dict__, "body": b'{"topK":100}'})
    assert check_signature(tampered, "AKIA_T", "s3cret").code == "InvalidSignatureException"  # type: ignore[union-attr]
    stale = _signed(b'{"topK":3}', now - dt.timedelta(minutes=20))
    problem = check_signature(stale, "AKIA_T", "s3cret")
    assert problem is not None and "expired" in problem.message
    unsigned = SignedRequest(**{**good.__dict__, "headers": {"host": "127.0.0.1:9"}})
    assert check_signature(unsigned, "AKIA_T", "s3cret").code == "MissingAuthenticationTokenException"  # type: ignore[union-attr]
    other_key = check_signature(good, "AKIA_OTHER", "s3cret")
    assert other_key is not None and other_key.code == "IncompleteSignatureException"
