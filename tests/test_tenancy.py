"""Tenancy: tenant id rules, index naming, the Token Vending Machine and scoped clients."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from urllib3.response import HTTPResponse

from strands_s3_vectors_memory.errors import ConfigurationError, InvalidIdentityError, IsolationError
from strands_s3_vectors_memory.tenancy import (
    TENANT_ID_PATTERN,
    TenantCredentials,
    TokenVendingMachine,
    scope_client,
    tenant_id_from_context,
    tenant_index_name,
    validate_tenant_id,
)

ROLE = "arn:aws:iam::123456789012:role/s3vm-tvm"
#: The index-name rule S3 Vectors itself enforces (from the botocore service model).
S3_VECTORS_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9-.]{1,61}[a-z0-9]")


@pytest.fixture(autouse=True)
def _ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process has ambient credentials: the ones tenant work must never use."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENTAMBIENT00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


# --- tenant ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tenant_id", ["a", "7", "tenant-001", "acme-corp-42", "a--b", "a" * 56])
def test_valid_tenant_ids_are_returned_unchanged(tenant_id: str) -> None:
    assert validate_tenant_id(tenant_id) == tenant_id
    assert tenant_index_name(tenant_id) == f"memory-{tenant_id}"


@pytest.mark.parametrize(
    "tenant_id",
    [
        None,
        42,
        b"tenant",
        ["tenant"],
        "",
        " ",
        " tenant",
        "tenant\n",
        "Tenant",
        "ACME",
        "tenant_1",
        "tenant.1",
        "tenant/1",
        "../memory",
        "tenant 1",
        "-tenant",
        "tenant-",
        "ténant",
        "a" * 57,
    ],
)
def test_invalid_tenant_ids_are_rejected_with_the_rule(tenant_id: object) -> None:
    with pytest.raises(InvalidIdentityError, match="lower-case letters a-z, digits 0-9 and hyphens"):
        validate_tenant_id(tenant_id)
    with pytest.raises(InvalidIdentityError):
        tenant_index_name(tenant_id)


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(TENANT_ID_PATTERN, fullmatch=True),
    st.from_regex(TENANT_ID_PATTERN, fullmatch=True),
)
def test_index_names_are_legal_and_never_shared(first: str, second: str) -> None:
    for tenant in (first, second):
        name = tenant_index_name(tenant)
        assert S3_VECTORS_INDEX_NAME.fullmatch(name), name
        assert len(name) <= 63
    assert (tenant_index_name(first) == tenant_index_name(second)) == (first == second)


def test_tenant_id_from_context() -> None:
    assert tenant_id_from_context({"tenantId": "tenant-001", "other": 1}) == "tenant-001"
    for bad in (None, "tenant-001", [("tenantId", "tenant-001")], {"tenant_id": "tenant-001"}):
        with pytest.raises(InvalidIdentityError, match="tenant"):
            tenant_id_from_context(bad)
    with pytest.raises(InvalidIdentityError, match="lower-case"):
        tenant_id_from_context({"tenantId": "Tenant-001"})


# --- Token Vending Machine: configuration ---------------------------------------------------------


@pytest.mark.parametrize(
    "role_arn",
    [
        "",
        "s3vm-tvm",
        "arn:aws:iam::12345678901:role/x",
        "arn:aws:iam::123456789012:user/x",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:sts::123456789012:assumed-role/x/y",
        "arn:aws:iam::123456789012:root",
    ],
)
def test_malformed_role_arn_is_a_configuration_error(role_arn: str) -> None:
    with pytest.raises(ConfigurationError, match="role ARN"):
        TokenVendingMachine(role_arn)


@pytest.mark.parametrize(
    "role_arn",
    [ROLE, "arn:aws-cn:iam::123456789012:role/tvm", "arn:aws-us-gov:iam::123456789012:role/path/to/tvm"],
)
def test_role_arns_in_every_partition_are_accepted(role_arn: str) -> None:
    assert TokenVendingMachine(role_arn).role_arn == role_arn


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_seconds": 899},
        {"duration_seconds": 43_201},
        {"duration_seconds": 900, "refresh_margin_seconds": 900},
        {"failure_ttl_seconds": -1},
        {"session_name_prefix": "too-long-prefix"},
        {"session_name_prefix": "bad/char"},
    ],
)
def test_impossible_tvm_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TokenVendingMachine(ROLE, **kwargs)


# --- Token Vending Machine: against moto's STS ----------------------------------------------------


@pytest.fixture
def moto_sts() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sts", region_name="us-east-1")


def _count_assume_role(sts: Any, delay: float = 0.0) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)
        time.sleep(delay)

    sts.meta.events.register("before-parameter-build.sts.AssumeRole", record)
    return calls


def test_each_tenant_gets_its_own_credentials_and_they_are_cached(moto_sts: Any) -> None:
    calls = _count_assume_role(moto_sts)
    tvm = TokenVendingMachine(ROLE, sts_client=moto_sts)
    first = tvm.credentials_for("tenant-a")
    other = tvm.credentials_for("tenant-b")
    again = tvm.credentials_for("tenant-a")
    assert first.access_key_id != other.access_key_id
    assert first.session_token != other.session_token
    assert again == first
    assert [c["Tags"] for c in calls] == [
        [{"Key": "TenantID", "Value": "tenant-a"}],
        [{"Key": "TenantID", "Value": "tenant-b"}],
    ]
    assert first.expiration > datetime.now(timezone.utc)


def test_concurrent_requests_for_one_tenant_share_one_sts_call(moto_sts: Any) -> None:
    calls = _count_assume_role(moto_sts, delay=0.2)
    tvm = TokenVendingMachine(ROLE, sts_client=moto_sts)
    results: list[TenantCredentials] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(tvm.credentials_for("tenant-a"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 8 and len({r.access_key_id for r in results}) == 1


def test_invalid_tenant_never_reaches_sts(moto_sts: Any) -> None:
    calls = _count_assume_role(moto_sts)
    tvm = TokenVendingMachine(ROLE, sts_client=moto_sts)
    with pytest.raises(InvalidIdentityError):
        tvm.credentials_for("Tenant-A")
    assert calls == []


# --- Token Vending Machine: exact requests, expiry and failures (Stubber) -------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _sts_client() -> Any:
    return boto3.client("sts", region_name="us-east-1")


def _credentials(key: str, expires_at: float) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": f"secret-{key}",
            "SessionToken": f"token-{key}",
            "Expiration": datetime.fromtimestamp(expires_at, timezone.utc),
        }
    }


def _assume_params(tenant: str, duration: int = 3600) -> dict[str, Any]:
    return {
        "RoleArn": ROLE,
        "RoleSessionName": f"s3vm-{tenant}",
        "DurationSeconds": duration,
        "Tags": [{"Key": "TenantID", "Value": tenant}],
    }


def test_assume_role_request_is_exactly_tagged_with_the_tenant() -> None:
    sts = _sts_client()
    tvm = TokenVendingMachine(ROLE, sts_client=sts, duration_seconds=900, refresh_margin_seconds=60)
    with Stubber(sts) as stubber:
        stubber.add_response(
            "assume_role", _credentials("ASIATENANT1TENANT1", time.time() + 900), _assume_params("t" * 56, 900)
        )
        credentials = tvm.credentials_for("t" * 56)
        stubber.assert_no_pending_responses()
    assert credentials.access_key_id == "ASIATENANT1TENANT1"
    assert len(f"s3vm-{'t' * 56}") <= 64


def test_credentials_are_refreshed_before_they_expire() -> None:
    sts, clock = _sts_client(), FakeClock()
    tvm = TokenVendingMachine(ROLE, sts_client=sts, refresh_margin_seconds=300, clock=clock)
    start = clock.now
    with Stubber(sts) as stubber:
        stubber.add_response("assume_role", _credentials("ASIAFIRSTFIRSTFIRST", start + 3600), _assume_params("acme"))
        stubber.add_response("assume_role", _credentials("ASIASECONDSECONDSE", start + 7000), _assume_params("acme"))
        assert tvm.credentials_for("acme").access_key_id == "ASIAFIRSTFIRSTFIRST"
        clock.now = start + 3600 - 301  # still outside the refresh margin
        assert tvm.credentials_for("acme").access_key_id == "ASIAFIRSTFIRSTFIRST"
        clock.now = start + 3600 - 299  # inside the margin: refresh early
        assert tvm.credentials_for("acme").access_key_id == "ASIASECONDSECONDSE"
        stubber.assert_no_pending_responses()


def test_sts_failure_is_an_isolation_error_cached_briefly() -> None:
    sts, clock = _sts_client(), FakeClock()
    calls = _count_assume_role(sts)
    tvm = TokenVendingMachine(ROLE, sts_client=sts, failure_ttl_seconds=30, clock=clock)
    with Stubber(sts) as stubber:
        stubber.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:TagSession", 403)
        with pytest.raises(IsolationError, match="tenant 'acme'") as first:
            tvm.credentials_for("acme")
        assert isinstance(first.value.__cause__, ClientError)
        clock.now += 29
        with pytest.raises(IsolationError, match="AccessDenied") as cached:
            tvm.credentials_for("acme")
        assert isinstance(cached.value.__cause__, ClientError)
        assert len(calls) == 1  # the cached failure did not call STS again
        clock.now += 2
        stubber.add_response(
            "assume_role", _credentials("ASIARECOVEREDRECOV", clock.now + 3600), _assume_params("acme")
        )
        assert tvm.credentials_for("acme").access_key_id == "ASIARECOVEREDRECOV"
    assert len(calls) == 2


def test_forget_drops_a_cached_failure() -> None:
    sts = _sts_client()
    tvm = TokenVendingMachine(ROLE, sts_client=sts)
    with Stubber(sts) as stubber:
        stubber.add_client_error("assume_role", "ExpiredTokenException", "expired", 400)
        stubber.add_response("assume_role", _credentials("ASIAAFTERAFTERAFTER", time.time() + 3600))
        with pytest.raises(IsolationError):
            tvm.credentials_for("acme")
        tvm.forget("acme")
        assert tvm.credentials_for("acme").access_key_id == "ASIAAFTERAFTERAFTER"


def test_malformed_sts_response_is_an_isolation_error() -> None:
    sts = _sts_client()
    tvm = TokenVendingMachine(ROLE, sts_client=sts)
    with Stubber(sts) as stubber:
        stubber.add_response("assume_role", {"AssumedRoleUser": {"AssumedRoleId": "x:y", "Arn": ROLE}})
        with pytest.raises(IsolationError, match="KeyError"):
            tvm.credentials_for("acme")


def test_missing_caller_credentials_are_an_isolation_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A fresh session: boto3's default session may have cached credentials from earlier tests.
    tvm = TokenVendingMachine(ROLE, sts_client=boto3.session.Session().client("sts", region_name="us-east-1"))
    with pytest.raises(IsolationError) as info:
        tvm.credentials_for("acme")
    assert isinstance(info.value.__cause__, NoCredentialsError)


def test_unreachable_sts_is_an_isolation_error() -> None:
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2),
    )
    tvm = TokenVendingMachine(ROLE, sts_client=sts)
    with pytest.raises(IsolationError) as info:
        tvm.client_for("acme")
    assert isinstance(info.value.__cause__, EndpointConnectionError)


# --- Token Vending Machine: clients use only the vended credentials ------------------------------


def _capture_signatures(client: Any) -> list[dict[str, str]]:
    """Record each request's auth headers and answer locally with an empty bucket list."""
    seen: list[dict[str, str]] = []

    def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        seen.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        raw = HTTPResponse(body=io.BytesIO(b'{"vectorBuckets": []}'), status=200, preload_content=False)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, raw)

    client.meta.events.register("before-send.s3vectors", answer)
    return seen


def test_tenant_clients_sign_with_vended_credentials_not_ambient_ones() -> None:
    sts = _sts_client()
    tvm = TokenVendingMachine(ROLE, sts_client=sts, region="eu-west-1")
    with Stubber(sts) as stubber:
        stubber.add_response("assume_role", _credentials("ASIAVENDEDTENANTA", time.time() + 3600))
        client = tvm.client_for("tenant-a")
        session = tvm.session_for("tenant-a")
    seen = _capture_signatures(client)
    client.list_vector_buckets()
    authorization = seen[0]["Authorization"]
    assert "Credential=ASIAVENDEDTENANTA/" in authorization
    assert "AMBIENT" not in authorization
    assert seen[0]["X-Amz-Security-Token"] == "token-ASIAVENDEDTENANTA"
    assert client.meta.region_name == "eu-west-1"
    frozen = session.get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.token) == ("ASIAVENDEDTENANTA", "token-ASIAVENDEDTENANTA")
    assert tvm.client_for("tenant-a") is client  # reused while the credentials are unchanged


class _NoEmbedder:
    model_id, dimension = "none", 2

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("not used")

    def embed_documents(self, texts: Any) -> list[list[float]]:
        raise AssertionError("not used")


def test_the_multi_tenant_store_uses_the_tvm_s_one_cache_of_clients(tmp_path: Any) -> None:
    """The store keeps no tenant clients of its own: the TVM's (with the store's retry settings), scoped."""
    from strands_s3_vectors_memory import MultiTenantS3VectorMemory
    from strands_s3_vectors_memory.index._clients import AWS_RETRY_CONFIG
    from strands_s3_vectors_memory.tenancy import ScopedClient

    sts = _sts_client()
    tvm = TokenVendingMachine(ROLE, sts_client=sts)
    store = MultiTenantS3VectorMemory("memories", backend="aws", data_dir=tmp_path, tvm=tvm, embedder=_NoEmbedder())
    with Stubber(sts) as stubber:
        stubber.add_response("assume_role", _credentials("ASIAVENDEDTENANTA", time.time() + 3600))
        scoped = store._get_s3vectors_client({"tenantId": "tenant-a"})
        again = store._get_s3vectors_client({"tenantId": "tenant-a"})
    assert isinstance(scoped, ScopedClient) and scoped.index_name == "memory-tenant-a"
    vended = tvm.client_for("tenant-a", region=store.region_name, config=AWS_RETRY_CONFIG)
    assert scoped.meta is vended.meta and again.meta is vended.meta
    assert tvm.client_for("tenant-a") is not vended  # another configuration, another client
    assert vended.meta.config.retries == AWS_RETRY_CONFIG.retries
    tvm.discard_clients("tenant-a")
    assert tvm.client_for("tenant-a", region=store.region_name, config=AWS_RETRY_CONFIG) is not vended


def test_failed_vending_never_yields_a_client() -> None:
    sts = _sts_client()
    tvm = TokenVendingMachine(ROLE, sts_client=sts)
    with Stubber(sts) as stubber:
        stubber.add_client_error("assume_role", "AccessDenied", "denied", 403)
        with pytest.raises(IsolationError):
            tvm.client_for("tenant-a")
        with pytest.raises(IsolationError):
            tvm.session_for("tenant-a")


def test_credentials_repr_hides_secrets() -> None:
    credentials = TenantCredentials("ASIAKEY", "top-secret", "session-token", datetime.now(timezone.utc))
    text = repr(credentials)
    assert "ASIAKEY" in text
    assert "top-secret" not in text and "session-token" not in text


# --- scope_client ---------------------------------------------------------------------------------

BUCKET, INDEX = "memories", "memory-tenant-a"
INDEX_ARN = f"arn:aws:s3vectors:us-east-1:123456789012:bucket/{BUCKET}/index/{INDEX}"


@pytest.fixture
def s3vectors() -> Any:
    return boto3.client("s3vectors", region_name="us-east-1")


def _query(**scope: Any) -> dict[str, Any]:
    return {"topK": 3, "queryVector": {"float32": [1.0, 0.0]}, **scope}


def _assert_denied(excinfo: pytest.ExceptionInfo[ClientError], operation: str) -> None:
    error = excinfo.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert excinfo.value.operation_name == operation


def test_in_scope_calls_are_forwarded_unchanged(s3vectors: Any) -> None:
    scoped = scope_client(s3vectors, bucket_name=BUCKET, index_name=INDEX)
    with Stubber(s3vectors) as stubber:
        stubber.add_response(
            "query_vectors",
            {"vectors": [{"key": "k1", "distance": 0.1}], "distanceMetric": "cosine"},
            _query(vectorBucketName=BUCKET, indexName=INDEX),
        )
        stubber.add_response("get_index", {"index": _index_description()}, {"indexArn": INDEX_ARN})
        stubber.add_response(
            "create_index",
            {"indexArn": INDEX_ARN},
            {
                "vectorBucketArn": f"arn:aws:s3vectors:us-east-1:123456789012:bucket/{BUCKET}",
                "indexName": INDEX,
                "dataType": "float32",
                "dimension": 2,
                "distanceMetric": "cosine",
            },
        )
        result = scoped.query_vectors(**_query(vectorBucketName=BUCKET, indexName=INDEX))
        scoped.get_index(indexArn=INDEX_ARN)
        scoped.create_index(
            vectorBucketArn=f"arn:aws:s3vectors:us-east-1:123456789012:bucket/{BUCKET}",
            indexName=INDEX,
            dataType="float32",
            dimension=2,
            distanceMetric="cosine",
        )
        stubber.assert_no_pending_responses()
    assert result["vectors"][0]["key"] == "k1"


def _index_description() -> dict[str, Any]:
    return {
        "vectorBucketName": BUCKET,
        "indexName": INDEX,
        "indexArn": INDEX_ARN,
        "creationTime": datetime.now(timezone.utc),
        "dataType": "float32",
        "dimension": 2,
        "distanceMetric": "cosine",
    }


@pytest.mark.parametrize(
    "scope",
    [
        {"vectorBucketName": BUCKET, "indexName": "memory-tenant-b"},
        {"vectorBucketName": "other-bucket", "indexName": INDEX},
        {"indexArn": INDEX_ARN.replace("memory-tenant-a", "memory-tenant-b")},
        {"indexArn": INDEX_ARN.replace(f"bucket/{BUCKET}/", "bucket/other/")},
        {"indexArn": INDEX_ARN + "/extra"},
        {"indexArn": "memory-tenant-a"},
        {"vectorBucketName": BUCKET, "indexName": INDEX, "indexArn": INDEX_ARN.replace("-a", "-b")},
        {"vectorBucketName": BUCKET},
        {"indexName": INDEX},
        {},
    ],
)
def test_out_of_scope_calls_are_denied_before_reaching_the_service(s3vectors: Any, scope: dict[str, Any]) -> None:
    scoped = scope_client(s3vectors, bucket_name=BUCKET, index_name=INDEX)
    with Stubber(s3vectors) as stubber:  # nothing queued: a forwarded call would fail differently
        with pytest.raises(s3vectors.exceptions.AccessDeniedException) as info:
            scoped.query_vectors(**_query(**scope))
        stubber.assert_no_pending_responses()
    _assert_denied(info, "QueryVectors")


@pytest.mark.parametrize(
    ("method", "operation", "kwargs"),
    [
        ("list_indexes", "ListIndexes", {"vectorBucketName": BUCKET}),
        ("delete_index", "DeleteIndex", {"vectorBucketName": BUCKET, "indexName": INDEX}),
        ("get_vector_bucket", "GetVectorBucket", {"vectorBucketName": BUCKET}),
        ("delete_vector_bucket", "DeleteVectorBucket", {"vectorBucketName": BUCKET}),
        ("list_vector_buckets", "ListVectorBuckets", {}),
        ("put_vector_bucket_policy", "PutVectorBucketPolicy", {"vectorBucketName": BUCKET, "policy": "{}"}),
        ("update_index_mode", "UpdateIndexMode", {"vectorBucketName": BUCKET, "indexName": INDEX,
                                                  "indexMode": "ENHANCED"}),
        ("update_metadata_configuration", "UpdateMetadataConfiguration", {"vectorBucketName": BUCKET,
                                                                          "indexName": INDEX}),
        ("put_vector_bucket_default_index_mode", "PutVectorBucketDefaultIndexMode",
         {"vectorBucketName": BUCKET, "defaultIndexMode": "ENHANCED"}),
    ],
)
def test_bucket_level_operations_are_denied(
    s3vectors: Any, method: str, operation: str, kwargs: dict[str, Any]
) -> None:
    scoped = scope_client(s3vectors, bucket_name=BUCKET, index_name=INDEX)
    with pytest.raises(ClientError) as info:
        getattr(scoped, method)(**kwargs)
    _assert_denied(info, operation)


def test_paginators_are_scoped(s3vectors: Any) -> None:
    scoped = scope_client(s3vectors, bucket_name=BUCKET, index_name=INDEX)
    with pytest.raises(ClientError) as denied:
        scoped.get_paginator("list_indexes")
    _assert_denied(denied, "ListIndexes")
    paginator = scoped.get_paginator("list_vectors")
    with pytest.raises(ClientError) as other:
        paginator.paginate(vectorBucketName=BUCKET, indexName="memory-tenant-b")
    _assert_denied(other, "ListVectors")
    with Stubber(s3vectors) as stubber:
        stubber.add_response("list_vectors", {"vectors": [{"key": "a"}], "nextToken": "t"})
        stubber.add_response(
            "list_vectors",
            {"vectors": [{"key": "b"}]},
            {"vectorBucketName": BUCKET, "indexName": INDEX, "nextToken": "t"},
        )
        pages = list(paginator.paginate(vectorBucketName=BUCKET, indexName=INDEX))
    assert [v["key"] for page in pages for v in page["vectors"]] == ["a", "b"]


def test_non_operation_attributes_are_forwarded(s3vectors: Any) -> None:
    scoped = scope_client(s3vectors, bucket_name=BUCKET, index_name=INDEX)
    assert scoped.meta is s3vectors.meta
    assert scoped.exceptions is s3vectors.exceptions
    assert scoped.can_paginate("list_vectors")
    with pytest.raises(TypeError):
        scoped.query_vectors(BUCKET)


def test_scoped_operations_are_the_seam_s_index_operations_and_the_tenant_role_s_actions() -> None:
    from strands_s3_vectors_memory.client import S3VectorsClient
    from strands_s3_vectors_memory.tenancy import SCOPED_OPERATIONS, ScopedClient
    from strands_s3_vectors_memory.tenancy._iam import TENANT_INDEX_ACTIONS

    seam = {name for name in vars(S3VectorsClient) if not name.startswith("_")}
    assert seam >= SCOPED_OPERATIONS
    assert seam - SCOPED_OPERATIONS == {
        "create_vector_bucket", "get_vector_bucket", "delete_index",
        "update_index_mode", "update_metadata_configuration",  # setup --upgrade, an operator action
    }
    assert all(callable(vars(ScopedClient).get(name)) for name in seam)  # explicit methods, not __getattr__
    camel = {"s3vectors:" + "".join(part.capitalize() for part in op.split("_")) for op in SCOPED_OPERATIONS}
    assert camel == set(TENANT_INDEX_ACTIONS)


def test_scope_client_works_with_any_s3_vectors_shaped_client() -> None:
    class Engine:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def put_vectors(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(("put_vectors", kwargs))
            return {}

        def stats(self) -> str:
            return "ok"

    engine = Engine()
    scoped = scope_client(engine, bucket_name=BUCKET, index_name=INDEX)
    scoped.put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=[])
    with pytest.raises(ClientError) as info:
        scoped.put_vectors(vectorBucketName=BUCKET, indexName="memory-tenant-b", vectors=[])
    _assert_denied(info, "PutVectors")
    assert engine.calls == [("put_vectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": []})]
    assert scoped.stats() == "ok"


def test_tvm_keeps_the_0_3_0_call_shapes() -> None:
    """Drop-in: ``TokenVendingMachine(role_arn, region_name)`` and ``get_client(service, tenant_context)``."""
    with mock_aws():
        tvm = TokenVendingMachine("arn:aws:iam::123456789012:role/tvm", "eu-west-1",
                                  sts_client=boto3.client("sts", region_name="eu-west-1"))
        assert tvm.region_name == "eu-west-1"
        client = tvm.get_client("s3vectors", {"tenantId": "tenant-001"})
        vended = tvm.credentials_for("tenant-001")
        assert client.meta.region_name == "eu-west-1"
        assert client._request_signer._credentials.access_key == vended.access_key_id
        session = tvm.get_session({"tenantId": "tenant-001"})
        assert session.get_credentials().access_key == vended.access_key_id
        with pytest.raises(InvalidIdentityError):
            tvm.get_client("s3vectors", {"tenant": "missing-key"})
