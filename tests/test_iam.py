"""IAM for the TVM role: trust only named principals, tag-scoped index access, idempotent setup."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from strands_s3_vectors_memory.errors import ConfigurationError
from strands_s3_vectors_memory.tenancy import TENANT_ID_PATTERN
from strands_s3_vectors_memory.tenancy._iam import (
    TENANT_INDEX_ACTIONS,
    TVM_POLICY_NAME,
    create_tvm_role,
    tvm_permissions_policy,
    tvm_trust_policy,
)

ACCOUNT = "123456789012"
SERVICE = f"arn:aws:iam::{ACCOUNT}:role/agent-service"
WORKER = f"arn:aws:iam::{ACCOUNT}:user/batch-worker"
TAG = "aws:RequestTag/TenantID"


def _statement(policy: dict[str, Any]) -> dict[str, Any]:
    assert policy["Version"] == "2012-10-17"
    assert len(policy["Statement"]) == 1
    statement: dict[str, Any] = policy["Statement"][0]
    return statement


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _trust_accepts_tag_value(policy: dict[str, Any], value: str) -> bool:
    """Evaluate the trust policy's tag-value conditions the way IAM does (``*``/``?`` wildcards)."""
    condition = _statement(policy)["Condition"]
    like = _as_list(condition["StringLike"][TAG])
    not_like = _as_list(condition["StringNotLike"][TAG])
    return any(fnmatchcase(value, p) for p in like) and not any(fnmatchcase(value, p) for p in not_like)


# --- trust policy --------------------------------------------------------------------------------


def test_trust_policy_names_only_the_given_principals() -> None:
    statement = _statement(tvm_trust_policy([SERVICE, WORKER, SERVICE]))
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": [SERVICE, WORKER]}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert "*" not in json.dumps(statement["Principal"])
    assert ":root" not in json.dumps(statement["Principal"])


def test_trust_policy_requires_exactly_the_tenant_tag() -> None:
    condition = _statement(tvm_trust_policy([SERVICE]))["Condition"]
    assert condition["Null"] == {TAG: "false"}
    assert condition["ForAllValues:StringEquals"] == {"aws:TagKeys": ["TenantID"]}


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("tenant-001", True),
        ("a", True),
        ("a" * 56, True),
        ("", False),
        ("a" * 57, False),
        ("Tenant-001", False),
        ("tenant_001", False),
        ("tenant.001", False),
        ("tenant/001", False),
        ("tenant:001", False),
        ("tenant 001", False),
        ("-tenant", False),
        ("tenant-", False),
    ],
)
def test_trust_policy_tag_conditions_follow_the_tenant_id_rule(value: str, accepted: bool) -> None:
    assert _trust_accepts_tag_value(tvm_trust_policy([SERVICE]), value) is accepted


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.from_regex(TENANT_ID_PATTERN, fullmatch=True),
        st.text(alphabet=string.ascii_lowercase + string.digits + "-", max_size=70),
        st.text(alphabet=string.ascii_letters + string.digits + "_.:/=+-@ ", max_size=70),
    )
)
def test_trust_policy_accepts_an_ascii_tag_value_iff_it_is_a_valid_tenant_id(value: str) -> None:
    accepted = _trust_accepts_tag_value(tvm_trust_policy([SERVICE]), value)
    assert accepted == (TENANT_ID_PATTERN.fullmatch(value) is not None)


@pytest.mark.parametrize(
    "principals",
    [
        [],
        ["*"],
        [f"arn:aws:iam::{ACCOUNT}:root"],
        [ACCOUNT],
        [f"arn:aws:iam::{ACCOUNT}:role/*"],
        [f"arn:aws:sts::{ACCOUNT}:assumed-role/agent-service/session"],
        ["arn:aws:iam::1234:role/agent-service"],
        [SERVICE, "not-an-arn"],
    ],
)
def test_trust_policy_rejects_broad_or_malformed_principals(principals: list[str]) -> None:
    with pytest.raises(ConfigurationError):
        tvm_trust_policy(principals)


def test_trust_policy_rejects_a_bare_string() -> None:
    with pytest.raises(ConfigurationError, match="list"):
        tvm_trust_policy(SERVICE)


# --- permissions policy --------------------------------------------------------------------------


def test_permissions_policy_reaches_only_the_sessions_tenant_index() -> None:
    statement = _statement(tvm_permissions_policy("my-vector-memory", region="us-east-1", account_id=ACCOUNT))
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == list(TENANT_INDEX_ACTIONS)
    assert set(statement["Action"]) == {
        "s3vectors:GetIndex",
        "s3vectors:CreateIndex",
        "s3vectors:PutVectors",
        "s3vectors:GetVectors",
        "s3vectors:ListVectors",
        "s3vectors:QueryVectors",
        "s3vectors:DeleteVectors",
    }
    assert statement["Resource"] == (
        f"arn:aws:s3vectors:us-east-1:{ACCOUNT}:bucket/my-vector-memory/index/memory-${{aws:PrincipalTag/TenantID}}"
    )
    assert statement["Condition"] == {"Null": {"aws:PrincipalTag/TenantID": "false"}}
    assert not any(a.endswith("*") for a in statement["Action"])


def test_permissions_policy_uses_the_regions_partition() -> None:
    resource = _statement(tvm_permissions_policy("bkt", region="cn-north-1", account_id=ACCOUNT))["Resource"]
    assert resource.startswith(f"arn:aws-cn:s3vectors:cn-north-1:{ACCOUNT}:bucket/bkt/index/")


@pytest.mark.parametrize(
    ("bucket", "region", "account"),
    [
        ("My-Bucket", "us-east-1", ACCOUNT),
        ("b", "us-east-1", ACCOUNT),
        ("bkt/x", "us-east-1", ACCOUNT),
        ("bkt", "moon-base-1", ACCOUNT),
        ("bkt", "us-east-1", "1234"),
        ("bkt", "us-east-1", "*"),
    ],
)
def test_permissions_policy_validates_its_inputs(bucket: str, region: str, account: str) -> None:
    with pytest.raises(ConfigurationError):
        tvm_permissions_policy(bucket, region=region, account_id=account)


# --- create_tvm_role against moto's IAM ----------------------------------------------------------


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def _role_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "role_name": "s3vm-tvm",
        "bucket_name": "my-vector-memory",
        "principal_arns": [SERVICE],
        "region": "us-east-1",
        "account_id": ACCOUNT,
    }
    kwargs.update(overrides)
    return kwargs


def _as_dict(document: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else document


def test_create_tvm_role_creates_role_and_inline_policy(iam: Any) -> None:
    arn = create_tvm_role(iam, **_role_kwargs())
    assert arn == f"arn:aws:iam::{ACCOUNT}:role/s3vm-tvm"
    role = iam.get_role(RoleName="s3vm-tvm")["Role"]
    assert _as_dict(role["AssumeRolePolicyDocument"]) == tvm_trust_policy([SERVICE])
    assert iam.list_role_policies(RoleName="s3vm-tvm")["PolicyNames"] == [TVM_POLICY_NAME]
    document = iam.get_role_policy(RoleName="s3vm-tvm", PolicyName=TVM_POLICY_NAME)["PolicyDocument"]
    assert _as_dict(document) == tvm_permissions_policy("my-vector-memory", region="us-east-1", account_id=ACCOUNT)
    assert iam.list_attached_role_policies(RoleName="s3vm-tvm")["AttachedPolicies"] == []


def test_create_tvm_role_is_idempotent_and_updates_policies(iam: Any) -> None:
    first = create_tvm_role(iam, **_role_kwargs())
    second = create_tvm_role(iam, **_role_kwargs(principal_arns=[SERVICE, WORKER], bucket_name="other-bucket"))
    assert second == first
    assert len([r for r in iam.list_roles()["Roles"] if r["RoleName"] == "s3vm-tvm"]) == 1
    role = iam.get_role(RoleName="s3vm-tvm")["Role"]
    assert _as_dict(role["AssumeRolePolicyDocument"])["Statement"][0]["Principal"] == {"AWS": [SERVICE, WORKER]}
    assert iam.list_role_policies(RoleName="s3vm-tvm")["PolicyNames"] == [TVM_POLICY_NAME]
    document = _as_dict(iam.get_role_policy(RoleName="s3vm-tvm", PolicyName=TVM_POLICY_NAME)["PolicyDocument"])
    assert document["Statement"][0]["Resource"].startswith(
        f"arn:aws:s3vectors:us-east-1:{ACCOUNT}:bucket/other-bucket/index/memory-"
    )


def test_create_tvm_role_validates_before_touching_iam(iam: Any) -> None:
    with pytest.raises(ConfigurationError):
        create_tvm_role(iam, **_role_kwargs(principal_arns=[f"arn:aws:iam::{ACCOUNT}:root"]))
    with pytest.raises(ConfigurationError):
        create_tvm_role(iam, **_role_kwargs(role_name="bad name"))
    assert iam.list_roles()["Roles"] == []
