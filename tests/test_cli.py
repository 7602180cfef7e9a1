"""The ``s3-vectors-memory`` command line: every command, its JSON output and its exit codes."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner, Result

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemory
from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.index._records import MemoryScope, detail_key, key_belongs, new_memory_key, summary_key
from support import HashingEmbedder, offline_cli_env

BUCKET = "cli-memory"
ACCOUNT = "123456789012"
SERVICE = f"arn:aws:iam::{ACCOUNT}:role/agent-service"

runner = CliRunner()


def run(*args: str, input: str | None = None, color: bool = False) -> Result:
    """Invoke the CLI; ``color=True`` keeps escape sequences in the output, as a terminal would get them."""
    return runner.invoke(app, list(args), input=input, color=color)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)




@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return offline_cli_env(monkeypatch, tmp_path / "data", BUCKET, columns=200)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Alice and Bob's memories, written once by the library with the same (bundled) model the CLI uses."""
    data_dir = tmp_path_factory.mktemp("seeded")
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir)
    store.store_conversation("alice", "a1", "Alice is vegetarian and allergic to peanuts.", agent_name="chef")
    store.store_conversation("alice", "a2", "Alice plans a trip to Kyoto in April with Sam.", agent_name="travel")
    store.store_memory("alice", "Alice works night shifts as a nurse.", agent_name="chef")
    store.store_memory("alice", "Alice's locker code was 1234.", agent_name="chef", ttl_seconds=-1)
    store.store_conversation("bob", "b1", "Bob eats peanut butter while training for a marathon.", agent_name="chef")
    store._base_client().close()
    return data_dir


@pytest.fixture
def memories(env: Path, seeded: Path) -> S3VectorMemory:
    """A private copy of the seeded memories in this test's data directory (what the CLI reads)."""
    shutil.copytree(seeded, env)
    return S3VectorMemory(backend="local", data_dir=env)


# --- setup ------------------------------------------------------------------------------------------


def test_setup_creates_bucket_and_index_once_and_is_idempotent(env: Path) -> None:
    first = as_json(run("setup", "--json"))
    assert (first["bucket_created"], first["index_created"]) == (True, True)
    assert (first["dimension"], first["distance_metric"], first["data_type"]) == (384, "cosine", "float32")
    again = as_json(run("setup", "--json"))
    assert (again["bucket_created"], again["index_created"]) == (False, False)
    with LocalS3VectorsClient(env) as client:
        index = client.get_index(vectorBucketName=BUCKET, indexName="memory")["index"]
    assert sorted(index["metadataConfiguration"]["nonFilterableMetadataKeys"]) == [
        "content", "conversation_id", "stored_at", "type"]
    tenant = as_json(run("setup", "--tenant", "acme", "--json"))
    assert tenant["index_name"] == "memory-acme" and tenant["index_created"] is True
    human = run("setup")
    assert human.exit_code == 0 and "already exists" in human.stdout


def test_setup_refuses_an_index_with_another_dimension_in_one_line(env: Path) -> None:
    assert run("setup").exit_code == 0
    result = run("setup", "--dimension", "16")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "dimension=384" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_setup_on_aws_uses_1024_dimensions_by_default(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with LocalEndpoint(env.parent / "served") as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3VECTORS", endpoint.url)
        created = as_json(run("setup", "--backend", "aws", "--region", "us-east-1", "--json"))
        assert (created["index_created"], created["dimension"]) == (True, 1024)
        assert as_json(run("setup", "--backend", "aws", "--json"))["index_created"] is False
        stats = as_json(run("stats", "--backend", "aws", "--json"))
        assert (stats["total"], stats["dimension"]) == (0, 1024)


# --- tvm-role ---------------------------------------------------------------------------------------


def test_tvm_role_prints_valid_policies(env: Path) -> None:
    out = as_json(run("tvm-role", "--account-id", ACCOUNT, "--region", "eu-west-1", "--principal", SERVICE,
                      "--json"))
    assert out["role_arn"] is None
    assert out["trust_policy"]["Statement"][0]["Principal"] == {"AWS": [SERVICE]}
    resource = out["permissions_policy"]["Statement"][0]["Resource"]
    assert resource == (f"arn:aws:s3vectors:eu-west-1:{ACCOUNT}:bucket/{BUCKET}"
                        "/index/memory-${aws:PrincipalTag/TenantID}")
    human = run("tvm-role", "--account-id", ACCOUNT, "--principal", SERVICE)
    assert human.exit_code == 0
    documents = re.split(r"^# .*$", human.stdout, flags=re.M)[1:]
    assert [json.loads(d) for d in documents] == [out["trust_policy"],
                                                  {**out["permissions_policy"], "Statement": [
                                                      {**out["permissions_policy"]["Statement"][0],
                                                       "Resource": resource.replace("eu-west-1", "us-east-1")}]}]


def test_tvm_role_rejects_an_untrustworthy_principal_as_a_usage_error(env: Path) -> None:
    result = run("tvm-role", "--account-id", ACCOUNT, "--principal", "*")
    assert result.exit_code == 2 and "invalid trusted principal" in result.output
    assert run("tvm-role", "--account-id", ACCOUNT).exit_code == 2  # --principal is required


@pytest.fixture
def aws_account(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


@pytest.mark.usefixtures("aws_account")
def test_tvm_role_create_makes_the_role_and_prints_its_arn() -> None:
    result = run("tvm-role", "--principal", SERVICE, "--create", "--role-name", "memory-tvm")
    assert result.exit_code == 0, result.output
    arn = f"arn:aws:iam::{ACCOUNT}:role/memory-tvm"
    assert f"export S3_VECTOR_TVM_ROLE_ARN={arn}" in result.stdout
    iam = boto3.client("iam", region_name="us-east-1")
    assert iam.get_role(RoleName="memory-tvm")["Role"]["Arn"] == arn
    again = as_json(run("tvm-role", "--principal", SERVICE, "--create", "--role-name", "memory-tvm", "--json"))
    assert again["role_arn"] == arn  # idempotent


# --- serve ------------------------------------------------------------------------------------------


def test_serve_hands_the_data_dir_host_and_port_to_the_server(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, str, int]] = []
    monkeypatch.setattr("s3vectors_engine.server.serve",
                        lambda data_dir, *, host, port: calls.append((data_dir, host, port)))
    assert run("serve", "--port", "9123").exit_code == 0
    assert calls == [(env, "127.0.0.1", 9123)]


def test_serve_on_a_busy_port_fails_with_one_line(env: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


# --- search / list ----------------------------------------------------------------------------------


def test_search_finds_the_users_memories_only(memories: S3VectorMemory) -> None:
    found = as_json(run("search", "what food allergies do I have?", "--user", "alice", "--threshold", "0",
                        "--json"))
    assert found and "peanuts" in found[0]["content"]
    assert {m["user_id"] for m in found} == {"alice"}
    assert all("locker" not in m["content"] for m in found)  # expired
    travel = as_json(run("search", "food", "--user", "alice", "--agent", "travel", "--threshold", "0", "--json"))
    assert [m["agent_name"] for m in travel] == ["travel"]
    human = run("search", "peanuts", "--user", "bob", "--threshold", "0")
    assert human.exit_code == 0 and "marathon" in human.stdout


def test_list_pages_with_next_token_and_all(memories: S3VectorMemory) -> None:
    first = as_json(run("list", "--user", "alice", "--page-size", "2", "--json"))
    assert len(first["memories"]) == 2 and first["next_token"]
    rest = as_json(run("list", "--user", "alice", "--page-size", "2", "--next-token", first["next_token"], "--json"))
    assert len(rest["memories"]) == 1 and rest["next_token"] is None
    everything = as_json(run("list", "--user", "alice", "--page-size", "1", "--all", "--json"))
    keys = [m["key"] for m in everything["memories"]]
    assert sorted(keys) == sorted(m["key"] for m in first["memories"] + rest["memories"])
    with_expired = as_json(run("list", "--user", "alice", "--all", "--include-expired", "--json"))
    assert len(with_expired["memories"]) == 4
    human = run("list", "--user", "alice", "--page-size", "2")
    assert human.exit_code == 0 and "--next-token" in human.stderr
    assert "no memories of carol" in run("list", "--user", "carol").stderr


# --- hostile text: stored content and ids are shown, never interpreted ------------------------------

#: Rich markup that would crash a table, then clear-screen (CSI) and set-window-title (OSC) sequences.
HOSTILE = "[/bold] hi \x1b[2J\x1b]0;pwned\x07"
#: An 8-bit CSI (C1), a right-to-left override and an emoji code Rich would replace.
HOSTILE_TOO = "C1 controls \x9b2J and a bidi override \u202eevil :smiley:"
MARKUP_USER = "eve[/red]"


@pytest.fixture
def hostile(env: Path) -> S3VectorMemory:
    """Memories with HOSTILE content, a user id that is Rich markup, and a raw vector whose ids hold ESC.

    The hostile content and the raw vector are written straight to the engine, as any other S3
    Vectors client could (the library itself stores nothing unprintable): the CLI must not trust that
    stored text and ids went through the library's cleaning and validation.
    """
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=env)
    for content in (HOSTILE, HOSTILE_TOO):
        stored = store.store_memory(MARKUP_USER, content, agent_name="[bold]agent")
        raw = store._base_client().get_vectors(vectorBucketName=BUCKET, indexName="memory", keys=[stored["key"]],
                                               returnData=True, returnMetadata=True)["vectors"][0]
        store._base_client().put_vectors(vectorBucketName=BUCKET, indexName="memory", vectors=[
            {**raw, "metadata": {**raw["metadata"], "content": content}}])
    vector = store.embed_documents(["mallory's memory"])[0]
    store._base_client().put_vectors(vectorBucketName=BUCKET, indexName="memory", vectors=[{
        "key": "raw-1", "data": {"float32": vector},
        "metadata": {"user_id": "mallory\x1b]0;owned\x07", "agent_name": "agent\x1b[31m", "type": "memory",
                     "content": "mallory's memory", "stored_at": "2026-01-01T00:00:00Z"},
    }])
    return store


def _no_raw_escapes(result: Result) -> None:
    assert result.exit_code == 0, result.output
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\x9b" not in stream and "\u202e" not in stream


@pytest.mark.usefixtures("hostile")
def test_list_and_search_show_hostile_content_escaped() -> None:
    for result in (run("list", "--user", MARKUP_USER, color=True),
                   run("search", "hi", "--user", MARKUP_USER, "--threshold", "0", color=True)):
        _no_raw_escapes(result)
        assert "[/bold] hi \\x1b[2J\\x1b]0;pwned\\x07" in result.stdout  # visible, as escapes
        assert "\\x9b2J" in result.stdout and "\\u202eevil :smiley:" in result.stdout
        assert MARKUP_USER in result.stdout and "[bold]agent" in result.stdout


@pytest.mark.usefixtures("hostile")
def test_stats_shows_every_user_id_escaped() -> None:
    result = run("stats", color=True)
    _no_raw_escapes(result)
    assert MARKUP_USER in result.stdout and "mallory\\x1b]0;owned\\x07" in result.stdout
    assert "agent\\x1b[31m" in result.stdout


@pytest.mark.usefixtures("hostile")
def test_json_output_keeps_hostile_text_exact_but_escaped() -> None:
    for result in (run("list", "--user", MARKUP_USER, "--json", color=True),
                   run("search", "hi", "--user", MARKUP_USER, "--threshold", "0", "--json", color=True)):
        _no_raw_escapes(result)
        found = json.loads(result.stdout)
        memories = found["memories"] if isinstance(found, dict) else found
        assert sorted(m["content"] for m in memories) == sorted([HOSTILE, HOSTILE_TOO])
    exported = run("export", "--user", MARKUP_USER, color=True)
    _no_raw_escapes(exported)
    lines = exported.stdout.splitlines()
    assert sorted(json.loads(line)["content"] for line in lines) == sorted([HOSTILE, HOSTILE_TOO])
    stats = run("stats", "--json", color=True)
    _no_raw_escapes(stats)
    assert json.loads(stats.stdout)["by_user"]["mallory\x1b]0;owned\x07"] == 1


# --- forget -----------------------------------------------------------------------------------------


def test_forget_asks_first_and_deletes_only_the_user(memories: S3VectorMemory) -> None:
    declined = run("forget", "--user", "alice", input="n\n")
    assert declined.exit_code == 1 and "Delete every memory of user 'alice'" in declined.output
    assert len(list(memories.iter_memories("alice", include_expired=True))) == 4
    accepted = run("forget", "--user", "alice", input="y\n")
    assert accepted.exit_code == 0 and "forgot 4 memories of alice" in accepted.stdout
    assert list(memories.iter_memories("alice", include_expired=True)) == []
    assert len(list(memories.iter_memories("bob"))) == 1
    report = as_json(run("forget", "--user", "alice", "--yes", "--json"))
    assert (report["found"], report["remaining"]) == (0, 0)


def test_forget_one_agent_with_json_report(memories: S3VectorMemory) -> None:
    report = as_json(run("forget", "--user", "alice", "--agent", "chef", "--yes", "--json", "--segments", "2"))
    assert (report["found"], report["deleted"], report["remaining"]) == (3, 3, 0)
    assert [m.agent_name for m in memories.iter_memories("alice")] == ["travel"]


def test_forget_a_tenant_drops_its_index(env: Path) -> None:
    assert run("setup", "--tenant", "acme").exit_code == 0
    assert run("setup", "--tenant", "globex").exit_code == 0
    dropped = as_json(run("forget", "--tenant", "acme", "--yes", "--json"))
    assert dropped == {"tenant_id": "acme", "index_name": "memory-acme", "deleted": True,
                       "pending_cancelled": 0}
    assert as_json(run("forget", "--tenant", "acme", "--yes", "--json"))["deleted"] is False
    assert as_json(run("stats", "--tenant", "globex", "--json"))["index_name"] == "memory-globex"
    assert run("stats", "--tenant", "acme").exit_code == 1


def test_forget_usage_errors_exit_2(env: Path) -> None:
    assert run("forget", "--yes").exit_code == 2
    assert run("forget", "--tenant", "acme", "--agent", "chef", "--yes").exit_code == 2
    assert run("forget", "--tenant", "Not_A_Tenant", "--yes").exit_code == 2
    assert run("forget", "--user", "", "--yes").exit_code == 2


# --- export / import --------------------------------------------------------------------------------


def test_export_then_import_into_another_store(memories: S3VectorMemory, tmp_path: Path) -> None:
    target = tmp_path / "alice.jsonl"
    summary = as_json(run("export", "--user", "alice", "-o", str(target), "--with-vectors", "--json"))
    assert summary == {"exported": 3, "output": str(target)}
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["metadata"]["user_id"] for r in records} == {"alice"} and all(len(r["vector"]) == 384 for r in records)
    streamed = run("export", "--user", "alice", "--agent", "travel")
    assert streamed.exit_code == 0 and len(streamed.stdout.splitlines()) == 1
    assert "exported 1 memories of alice" in streamed.stderr

    other = tmp_path / "other"
    assert run("setup", "--data-dir", str(other)).exit_code == 0
    report = as_json(run("import", str(target), "--data-dir", str(other), "--keep-vectors", "--json"))
    assert report == {"imported": 3, "re_embedded": 0, "kept_vectors": 3, "rejected": 0, "rejections": []}
    copied = as_json(run("list", "--user", "alice", "--data-dir", str(other), "--all", "--json"))
    assert sorted(m["key"] for m in copied["memories"]) == sorted(r["key"] for r in records)


def test_import_of_another_models_export_re_embeds(env: Path, tmp_path: Path) -> None:
    tiny = S3VectorMemory(bucket_name="tiny-bucket", backend="local", data_dir=tmp_path / "tiny",
                          embedder=HashingEmbedder(16, model_id="tiny-16"))  # another model and dimension
    tiny.store_memory("dana", "Dana keeps bees on her roof in Lisbon.")
    buffer = io.StringIO()
    tiny.export_memories("dana", buffer, include_vectors=True)
    assert run("setup").exit_code == 0
    report = as_json(run("import", "-", "--keep-vectors", "--json", input=buffer.getvalue()))
    assert report == {"imported": 1, "re_embedded": 1, "kept_vectors": 0, "rejected": 0, "rejections": []}
    found = as_json(run("search", "beekeeping hobby", "--user", "dana", "--threshold", "0", "--json"))
    assert found[0]["content"] == "Dana keeps bees on her roof in Lisbon."


def test_import_of_a_malformed_file_fails_naming_the_line(env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "k", "content": "x", "metadata": {"user_id": "u"}}\n{oops\n')
    assert run("setup").exit_code == 0
    result = run("import", str(bad))
    assert result.exit_code == 1 and "line 2" in result.stderr and "Traceback" not in result.output
    assert run("import", str(tmp_path / "missing.jsonl")).exit_code == 1


def test_a_failed_export_leaves_no_partial_file(env: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    result = run("export", "--user", "alice", "-o", str(target), "--tenant", "acme", "--backend", "aws")
    assert result.exit_code == 1 and "S3_VECTOR_TVM_ROLE_ARN" in result.stderr
    assert not target.exists() and list(tmp_path.glob(".*partial")) == []


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_import_refuses_lines_whose_key_belongs_to_someone_else(memories: S3VectorMemory, tmp_path: Path) -> None:
    bob_summary = summary_key(MemoryScope("bob", "chef"), "b1")
    before = memories.get_memory(bob_summary, "bob")
    assert before is not None and "marathon" in before.content
    alice = {"user_id": "alice", "agent_name": "chef", "type": "summary"}
    alice_summary = summary_key(MemoryScope("alice", "chef"), "a9")
    crafted = _jsonl(tmp_path / "crafted.jsonl", [
        {"key": bob_summary, "content": "Bob wants every memory deleted.",
         "metadata": {**alice, "conversation_id": "b1"}},
        {"key": alice_summary, "content": "Alice adopted a cat.", "metadata": {**alice, "conversation_id": "a9"}},
        {"key": "custom-\x1b[2J", "content": "not a key of ours", "metadata": {**alice, "type": "memory"}},
        {"key": new_memory_key(MemoryScope("alice", "travel")), "content": "another agent's key",
         "metadata": {**alice, "type": "memory"}},
    ])
    result = run("import", str(crafted), "--json", color=True)
    assert result.exit_code == 1 and "\x1b" not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["imported"], report["rejected"]) == (1, 3)
    assert [r["line"] for r in report["rejections"]] == [1, 3, 4]
    assert report["rejections"][1]["key"] == "custom-\x1b[2J"
    assert all("does not belong" in r["reason"] for r in report["rejections"])
    assert memories.get_memory(bob_summary, "bob") == before  # the crafted line changed nothing
    imported = memories.get_memory(alice_summary, "alice", agent_name="chef")
    assert imported is not None and imported.content == "Alice adopted a cat."

    human = run("import", str(crafted), color=True)
    assert human.exit_code == 1 and "\x1b" not in human.stdout + human.stderr
    assert "imported 1 memories" in human.stdout
    assert "line 1: refused key" in human.stderr and "line 3: refused key 'custom-\\x1b[2J'" in human.stderr
    assert "refused 3 lines" in human.stderr


def test_a_tenants_export_imports_into_that_tenant_only(env: Path, tmp_path: Path) -> None:
    assert run("setup", "--tenant", "acme").exit_code == 0
    assert run("setup", "--tenant", "globex").exit_code == 0
    acme = {"tenantId": "acme"}
    tenants = MultiTenantS3VectorMemory(BUCKET, backend="local", data_dir=env)
    tenants.store_conversation("alice", "t1", "Alice runs the acme pilot.", acme, "chef", details=["pilot in May"])
    tenants.store_memory("alice", "Alice's badge is blue.", acme)
    exported = tmp_path / "acme.jsonl"
    assert run("export", "--user", "alice", "--tenant", "acme", "-o", str(exported)).exit_code == 0
    assert len(exported.read_text().splitlines()) == 3

    other = tmp_path / "other"
    assert run("setup", "--tenant", "acme", "--data-dir", str(other)).exit_code == 0
    report = as_json(run("import", str(exported), "--tenant", "acme", "--data-dir", str(other), "--json"))
    assert (report["imported"], report["rejected"]) == (3, 0)
    # keys are bound to their tenant: another tenant's index refuses them
    moved = run("import", str(exported), "--tenant", "globex", "--json")
    assert moved.exit_code == 1 and json.loads(moved.stdout)["rejected"] == 3


def test_key_belongs_accepts_only_the_keys_a_scope_and_conversation_make() -> None:
    alice = MemoryScope("alice", "chef")
    summary = summary_key(alice, "c1")
    assert key_belongs(summary, alice, "c1")
    for scope, conversation in [(alice, "c2"), (alice, None), (MemoryScope("bob", "chef"), "c1"),
                                (MemoryScope("alice", "travel"), "c1"), (MemoryScope("alice", "chef", "acme"), "c1")]:
        assert not key_belongs(summary, scope, conversation)
    detail = detail_key(alice, "c1", "USER: I bake sourdough")
    assert key_belongs(detail, alice, "c1") and not key_belongs(detail, alice, "c2")
    # whatever follows the conversation's prefix names the detail (an index today, maybe a content hash)
    prefix = detail.rpartition("-")[0]
    assert key_belongs(f"{prefix}-9f86d081884c7d65", alice, "c1") and not key_belongs(f"{prefix}-", alice, "c1")
    memory = new_memory_key(alice)
    assert key_belongs(memory, alice) and key_belongs(memory, alice, "c7")
    assert not key_belongs(memory, MemoryScope("bob", "chef")) and not key_belongs(memory[:21], alice)
    assert not key_belongs("custom-key", alice, "c1") and not key_belongs("", alice)


# --- prune / stats ----------------------------------------------------------------------------------


def test_prune_and_stats(memories: S3VectorMemory) -> None:
    stats = as_json(run("stats", "--json"))
    assert (stats["total"], stats["expired"]) == (5, 1)
    assert stats["by_user"] == {"alice": 4, "bob": 1}
    assert stats["by_agent"] == {"chef": 4, "travel": 1}
    assert stats["by_type"] == {"summary": 3, "memory": 2}
    assert as_json(run("prune", "--json")) == {"pruned": 1, "index_name": "memory"}
    assert as_json(run("prune", "--json"))["pruned"] == 0
    assert as_json(run("stats", "--json", "--segments", "1"))["expired"] == 0
    human = run("stats")
    assert human.exit_code == 0 and "by user" in human.stdout and "alice" in human.stdout


# --- a missing bucket or index is an error, for every command that uses an index --------------------

#: Each command that reads or writes the index, with the arguments it needs.
INDEX_COMMANDS = {
    "search": ["search", "anything", "--user", "u1"],
    "list": ["list", "--user", "u1"],
    "forget": ["forget", "--user", "u1", "--yes"],
    "export": ["export", "--user", "u1"],
    "import": ["import", "-"],
    "prune": ["prune"],
    "stats": ["stats"],
}
IMPORT_LINE = json.dumps({"key": new_memory_key(MemoryScope("u1")), "content": "likes tea",
                          "metadata": {"user_id": "u1", "agent_name": "default", "type": "memory"}}) + "\n"


def _fails_in_one_line_naming(result: Result, *hints: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(hint in result.stderr for hint in hints), result.stderr
    assert "create_index" not in result.stderr and "bucket_name=" not in result.stderr


@pytest.mark.parametrize("command", INDEX_COMMANDS)
def test_a_missing_bucket_is_an_error_naming_the_bucket_option(env: Path, command: str) -> None:
    for extra in ([], ["--tenant", "acme"]):
        result = run(*INDEX_COMMANDS[command], *extra, "--bucket", "no-such-bucket", input=IMPORT_LINE)
        _fails_in_one_line_naming(result, "'no-such-bucket'", "--bucket")
    with LocalS3VectorsClient(env) as client:
        assert client.list_vector_buckets()["vectorBuckets"] == []  # nothing was created on the way


@pytest.mark.parametrize("command", INDEX_COMMANDS)
def test_a_missing_index_is_an_error_naming_the_setup_command(env: Path, command: str, tmp_path: Path) -> None:
    with LocalS3VectorsClient(env) as client:
        client.create_vector_bucket(vectorBucketName=BUCKET)
    result = run(*INDEX_COMMANDS[command], input=IMPORT_LINE)
    _fails_in_one_line_naming(result, "index 'memory'", "s3-vectors-memory setup")
    tenant = run(*INDEX_COMMANDS[command], "--tenant", "acme", input=IMPORT_LINE)
    _fails_in_one_line_naming(tenant, "index 'memory-acme'", "--tenant", "s3-vectors-memory --tenant acme setup")
    with LocalS3VectorsClient(env) as client:
        assert client.list_indexes(vectorBucketName=BUCKET)["indexes"] == []  # nothing was created on the way


def test_a_failed_export_to_a_missing_index_writes_no_file(env: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    assert run("export", "--user", "u1", "-o", str(target)).exit_code == 1
    assert not target.exists() and list(tmp_path.glob(".*partial")) == []


def test_forgetting_a_tenant_in_a_missing_bucket_is_an_error(env: Path) -> None:
    result = run("forget", "--tenant", "acme", "--yes", "--bucket", "no-such-bucket")
    _fails_in_one_line_naming(result, "'no-such-bucket'", "--bucket")


# --- shell behaviour --------------------------------------------------------------------------------


def test_missing_bucket_is_a_usage_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3_VECTOR_BUCKET_NAME")
    result = run("list", "--user", "alice")
    assert result.exit_code == 2 and "--bucket" in result.output


def test_operational_errors_are_one_line_unless_debug(env: Path) -> None:
    result = run("search", "anything", "--user", "alice")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: vector bucket '{BUCKET}' does not exist in {env}: check --bucket and --data-dir, or create it "
        "with `s3-vectors-memory setup`"
    )
    debug = run("search", "anything", "--user", "alice", "--debug")
    assert debug.exit_code == 1 and type(debug.exception).__name__ == "ConfigurationError"


def test_common_options_go_before_the_command_or_after_it(
    memories: S3VectorMemory, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("S3_VECTOR_BUCKET_NAME")
    monkeypatch.delenv("S3_VECTORS_MEMORY_BACKEND")
    where = ["--backend", "local", "--data-dir", str(env), "--bucket", BUCKET]
    before = as_json(run(*where, "--json", "list", "--user", "alice"))
    assert len(before["memories"]) == 3
    assert as_json(run("list", "--user", "alice", *where, "--json")) == before
    # given on both sides, the command's own value wins
    assert as_json(run("--bucket", "no-such-bucket", "list", "--user", "alice", *where, "--json")) == before
    assert as_json(run(*where, "stats", "--json"))["total"] == 5
    monkeypatch.setenv("S3_VECTOR_BUCKET_NAME", BUCKET)  # the environment still fills what is not given
    assert as_json(run("--backend", "local", "--data-dir", str(env), "list", "--user", "alice", "--json")) == before


@pytest.mark.usefixtures("env")
def test_common_options_are_documented_once_on_the_root() -> None:
    common = ("--backend", "--data-dir", "--bucket", "--region", "--tvm-role-arn", "--embedding-model", "--json",
              "--debug")
    root = run("--help")
    assert root.exit_code == 0 and all(option in root.stdout for option in common), root.stdout
    for command in ("search", "list", "forget", "export", "import", "prune", "stats", "setup", "serve"):
        page = run(command, "--help")
        assert page.exit_code == 0 and not [o for o in common if o in page.stdout], (command, page.stdout)


def test_every_command_is_registered_with_help() -> None:
    for command in ("demo", "setup", "tvm-role", "serve", "search", "list", "forget", "export", "import",
                    "prune", "stats"):
        assert run(command, "--help").exit_code == 0, command
    assert run("no-such-command").exit_code == 2


@pytest.mark.parametrize("command", [("replay",), ("dead-letters", "list")])
def test_a_spool_that_does_not_exist_is_an_error_and_nothing_is_created(
    env: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "no-such-spool"
    result = run(*command, "--spool", str(missing))
    assert result.exit_code == 2, result.output
    assert "no spool directory" in result.output and str(missing.name) in result.output
    assert not missing.exists()
