"""A hypothesis state machine that tries, by random operation sequences, to see another scope's memory.

A *scope* is (tenant, user, agent). Every stored text carries a unique marker (``mk...``) whose
owner is recorded; after each read the machine checks that every marker it was shown belongs to
the reader's scope, that the records' metadata name the reader, and (for plain ``store_memory``
records) that the reader's own unexpired memories are all found, so an empty answer cannot pass.

Operations: ``store_memory`` (with and without TTL, expired included), ``store_conversation``,
``search``, ``retrieve_memories``, plugin turns (first-turn injection, ``end_session`` writes), the
recall tool called by the model with extra arguments naming a victim, and direct probes of other
tenants' indexes (which must be denied). Scopes are generated fresh and as near misses of existing
ones (case, whitespace, prefixes, slashes, combining accents, single- vs multi-tenant). The lifecycle
API (list, export, get/delete by key, forget) is exercised too: it may neither show nor touch
another scope's memory, even when handed that memory's key.

The same machine runs on the embedded engine and through the local HTTP endpoint with per-tenant
access keys; :class:`World` hides the difference.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule
from reliability_support import (
    ADMIN_KEY,
    FakeSts,
    SeededRandomEmbedder,
    boto3_client,
    last_user_turn,
    make_agent,
    markers_in,
    tenant_key,
    tool_results,
)
from strands import Agent
from strands.types.content import Messages

from s3vectors_engine import LocalS3VectorsClient
from strands_s3_vectors_memory import (
    Memory,
    MultiTenantS3VectorMemory,
    RetrievalSettings,
    S3VectorMemory,
    S3VectorMemoryPlugin,
    TokenVendingMachine,
)
from strands_s3_vectors_memory.testing import Reply, ScriptedModel, ToolCall, default_responder
from support import asks_for_summary, chat_prompts

TVM_ROLE = "arn:aws:iam::123456789012:role/tvm"

# ----------------------------------------------------------------------------------- strategies

#: Ids that look alike, nest, or look like filter syntax: what a sloppy scope check would confuse.
TRICKY_IDS = [
    "u1", "u10", "U1", "u1 ", " u1", "u", "a/b", "a", "b", "a/b/", "ユーザー", "e\u0301", "\u00e9",
    "*", ".*", "%", "$eq", "$ne", '{"$ne": ""}', "user_id", "default", "null", "0", "-1", "x" * 200,
]
_ID_CHARS = st.characters(blacklist_categories=("Cc", "Cs"))
IDS = st.one_of(
    st.sampled_from(TRICKY_IDS),
    st.text(alphabet=_ID_CHARS, min_size=1, max_size=16).filter(lambda s: bool(s.strip())),
)
AGENTS = st.sampled_from(["assistant", "Assistant", "assistant2", "planner", "a/b", "助手", "default"])
TENANTS = st.one_of(
    st.none(),
    st.sampled_from(["t1", "t10", "t-1", "acme", "acme-eu", "0"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
)
CONVERSATIONS = st.sampled_from(["c1", "c2", "conv/1", "c 1", "会話"])
VARIANTS = st.sampled_from(
    ["user+space", "user.upper", "user+slash", "user-prefix", "user+accent", "agent+2", "agent.upper",
     "tenant+0", "tenant-prefix", "tenant<->single", "other-tenant"]
)
EXTRA_TOOL_ARGS = st.sets(
    st.sampled_from(["user_id", "tenant_context", "tenantId", "agent_name", "conversation_id", "invocation_state"])
)


@dataclass(frozen=True)
class Scope:
    tenant: str | None
    user: str
    agent: str

    @property
    def tenant_context(self) -> dict[str, str] | None:
        return {"tenantId": self.tenant} if self.tenant is not None else None

    def owns(self, owner: Scope, *, any_agent: bool = False) -> bool:
        same_user = owner.tenant == self.tenant and owner.user == self.user
        return same_user and (any_agent or owner.agent == self.agent)


def _variant(base: Scope, kind: str) -> Scope:
    user, agent, tenant = base.user, base.agent, base.tenant
    if kind == "user+space":
        user = user + " "
    elif kind == "user.upper":
        user = user.upper() if user.upper() != user else user.lower() + "x"
    elif kind == "user+slash":
        user = user + "/x"
    elif kind == "user-prefix":
        user = user[:-1] if len(user.strip()) > 1 and user[:-1].strip() else user + user
    elif kind == "user+accent":
        user = user + "\u0301"
    elif kind == "agent+2":
        agent = agent + "2"
    elif kind == "agent.upper":
        agent = agent.upper() if agent.upper() != agent else agent + "X"
    elif kind == "tenant+0":
        tenant = (tenant or "t") + "0"
    elif kind == "tenant-prefix":
        tenant = tenant[:-1] if tenant and len(tenant) > 1 and tenant[-2] != "-" else "p" + (tenant or "")
    elif kind == "tenant<->single":
        tenant = None if tenant is not None else "t1"
    else:  # other-tenant
        tenant = "zz" + (tenant or "")[:20]
    return Scope(tenant, user, agent)


# ----------------------------------------------------------------------------------- the world


class World:
    """One single-tenant and one multi-tenant store on a fresh bucket, embedded or over HTTP."""

    def __init__(self, root: Path, endpoint_url: str | None = None) -> None:
        self.root = root
        self.endpoint_url = endpoint_url
        self.bucket = "iso-" + uuid.uuid4().hex[:16]
        self.embedder = SeededRandomEmbedder()
        self.engine: LocalS3VectorsClient | None = None
        self.sts: FakeSts | None = None
        if endpoint_url is None:
            self.engine = LocalS3VectorsClient(root / "engine")
            self.admin: Any = self.engine
            self.single = S3VectorMemory(
                self.bucket, backend="local", data_dir=root, client=self.engine, embedder=self.embedder
            )
            self.multi = MultiTenantS3VectorMemory(
                self.bucket, backend="local", data_dir=root, client=self.engine, embedder=self.embedder
            )
        else:
            self.admin = boto3_client(endpoint_url, ADMIN_KEY)
            self.admin.create_vector_bucket(vectorBucketName=self.bucket)
            self.single = S3VectorMemory(
                self.bucket, backend="aws", data_dir=root, client=self.admin, embedder=self.embedder
            )
            self.sts = FakeSts()
            tvm = TokenVendingMachine(TVM_ROLE, sts_client=self.sts)
            self.multi = MultiTenantS3VectorMemory(
                self.bucket, backend="aws", data_dir=root, tvm=tvm, endpoint_url=endpoint_url, embedder=self.embedder
            )
        self._plugins: dict[tuple[bool, str], tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]] = {}
        self.script: list[Reply] = []

    def store(self, scope: Scope) -> S3VectorMemory:
        return self.multi if scope.tenant is not None else self.single

    def _responder(self, messages: Messages, system_prompt: str | None) -> Reply:
        if asks_for_summary(messages):
            return default_responder(messages, system_prompt)
        if self.script:
            return self.script.pop(0)
        return default_responder(messages, system_prompt)

    def agent(self, scope: Scope) -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
        key = (scope.tenant is not None, scope.agent)
        if key not in self._plugins:
            spool = self.root / "spool" / uuid.uuid4().hex
            self._plugins[key] = make_agent(
                self.store(scope),
                name=scope.agent,
                model=ScriptedModel(responder=self._responder),
                spool_dir=spool,
                retrieval=RetrievalSettings(similarity_threshold=0.0, read_your_writes_timeout=0))
        return self._plugins[key]

    def index_client(self, tenant: str) -> Any:
        """A raw client holding only ``tenant``'s rights (its access key, or a scoped engine client)."""
        if self.endpoint_url is not None:
            return boto3_client(self.endpoint_url, tenant_key(tenant))
        return self.multi._get_s3vectors_client({"tenantId": tenant})

    def close(self) -> None:
        for _agent, plugin, _model in self._plugins.values():
            plugin.close(10)
        if self.engine is not None:
            self.engine.close()


class IsolationMachine(RuleBasedStateMachine):
    """Random operation sequences over many scopes; reads may only ever show the reader's own data."""

    #: Set by the test before running: None for the embedded engine, else the endpoint URL.
    endpoint_url: str | None = None

    scopes = Bundle("scopes")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="iso-"))
        self.world = World(self.tmp, self.endpoint_url)
        self.owner: dict[str, Scope] = {}
        self.expired: set[str] = set()
        self.live_memories: dict[Scope, set[str]] = {}
        self.live_markers: dict[str, str] = {}  # key of a live store_memory record -> its marker
        self.counter = 0
        self.reads = 0

    def teardown(self) -> None:
        try:
            self.world.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    def _marker(self, scope: Scope) -> str:
        self.counter += 1
        marker = f"mk{uuid.uuid4().hex[:4]}{self.counter:08x}"
        self.owner[marker] = scope
        return marker

    def _check_text(self, reader: Scope, text: str, what: str, *, any_agent: bool = False) -> None:
        self.reads += 1
        for marker in markers_in(text):
            owner = self.owner.get(marker)
            assert owner is not None, f"{what}: unknown marker {marker}"
            assert reader.owns(owner, any_agent=any_agent), f"{what}: {reader} was shown {marker} of {owner}"
            assert marker not in self.expired, f"{what}: expired memory {marker} was returned"

    def _check_memories(self, reader: Scope, memories: list[Memory], what: str, *, any_agent: bool) -> None:
        for memory in memories:
            assert memory.user_id == reader.user, f"{what}: record of user {memory.user_id!r}"
            if not any_agent:
                assert memory.agent_name == reader.agent, f"{what}: record of agent {memory.agent_name!r}"
            self._check_text(reader, memory.content, what, any_agent=any_agent)

    # ------------------------------------------------------------------ scopes

    @initialize(target=scopes, user=IDS, agent=AGENTS, tenant=TENANTS)
    def first_scope(self, user: str, agent: str, tenant: str | None) -> Scope:
        return Scope(tenant, user, agent)

    @rule(target=scopes, user=IDS, agent=AGENTS, tenant=TENANTS)
    def add_scope(self, user: str, agent: str, tenant: str | None) -> Scope:
        return Scope(tenant, user, agent)

    @rule(target=scopes, base=scopes, kind=VARIANTS)
    def near_miss(self, base: Scope, kind: str) -> Scope:
        return _variant(base, kind)

    # ------------------------------------------------------------------ writes

    @rule(scope=scopes, ttl=st.sampled_from([None, None, -60.0, 3600.0]))
    def store_memory(self, scope: Scope, ttl: float | None) -> None:
        marker = self._marker(scope)
        result = self.world.store(scope).store_memory(
            scope.user, f"Fact {marker} about this user.", scope.tenant_context, scope.agent, ttl_seconds=ttl
        )
        if ttl is not None and ttl < 0:
            self.expired.add(marker)
        else:
            self.live_memories.setdefault(scope, set()).add(str(result["key"]))
            self.live_markers[str(result["key"])] = marker

    @rule(scope=scopes, conversation=CONVERSATIONS, details=st.integers(0, 3))
    def store_conversation(self, scope: Scope, conversation: str, details: int) -> None:
        summary = f"Summary {self._marker(scope)} of a talk."
        extra = [f"Detail {self._marker(scope)}." for _ in range(details)]
        keys = self.world.store(scope).store_conversation(
            scope.user, conversation, summary, scope.tenant_context, scope.agent, details=extra
        )
        assert len(keys) == 1 + details and len(set(keys)) == len(keys)

    # ------------------------------------------------------------------ reads

    @rule(scope=scopes, any_agent=st.booleans(), query=st.sampled_from(["Fact", "Summary", "what do you know"]))
    def search(self, scope: Scope, any_agent: bool, query: str) -> None:
        store = self.world.store(scope)
        agent = None if any_agent else scope.agent
        found = store.search(scope.user, query, top_k=100, tenant_context=scope.tenant_context,
                             agent_name=agent, similarity_threshold=0.0)
        self._check_memories(scope, found, "search", any_agent=any_agent)
        own = self.live_memories.get(scope, set())
        missing = own - {m.key for m in found}
        assert not missing, f"search lost {len(missing)} of {scope}'s own memories"

    @rule(scope=scopes)
    def retrieve_memories(self, scope: Scope) -> None:
        rows = self.world.store(scope).retrieve_memories(
            scope.user, "anything", top_k=100, tenant_context=scope.tenant_context, agent_name=scope.agent
        )
        for row in rows:
            assert row["agent_name"] == scope.agent
            self._check_text(scope, str(row["content"]), "retrieve_memories")
        assert self.live_memories.get(scope, set()) <= {str(r["key"]) for r in rows}

    @rule(scope=scopes, conversation=CONVERSATIONS, end=st.booleans())
    def plugin_turn(self, scope: Scope, conversation: str, end: bool) -> None:
        agent, plugin, model = self.world.agent(scope)
        marker = self._marker(scope)
        state: dict[str, Any] = {"user_id": scope.user, "conversation_id": conversation, "end_session": end}
        if scope.tenant is not None:
            state["tenant_context"] = scope.tenant_context
        before = len(chat_prompts(model))
        agent(f"Please remember note {marker}.", invocation_state=state)
        prompts = chat_prompts(model)[before:]
        assert prompts, "the model was not called"
        for prompt in prompts:
            self._check_text(scope, prompt, "system prompt")
        if end:
            assert plugin.flush(30), "writer did not finish"
            assert plugin.writer.stats.failed == 0

    @rule(scope=scopes, victim=scopes, extra=EXTRA_TOOL_ARGS, conversation=CONVERSATIONS)
    def recall_tool(self, scope: Scope, victim: Scope, extra: set[str], conversation: str) -> None:
        agent, _plugin, _model = self.world.agent(scope)
        arguments: dict[str, Any] = {"query": "Fact Summary note Detail", "top_k": 10}
        widen: dict[str, Any] = {
            "user_id": victim.user,
            "tenant_context": {"tenantId": victim.tenant or "t1"},
            "tenantId": victim.tenant or "t1",
            "agent_name": victim.agent,
            "conversation_id": "stolen",
            "invocation_state": {"user_id": victim.user, "tenant_context": victim.tenant_context},
        }
        arguments.update({name: widen[name] for name in extra})
        self.world.script[:] = [ToolCall("recall_memories", arguments), "done"]
        state: dict[str, Any] = {"user_id": scope.user, "conversation_id": conversation}
        if scope.tenant is not None:
            state["tenant_context"] = scope.tenant_context
        agent("Do you remember anything?", invocation_state=state)
        results = tool_results(agent, since=last_user_turn(agent, "Do you remember anything?"))
        assert len(results) == 1, f"expected one tool result, got {results}"
        self._check_text(scope, results[0], "recall tool")
        self.world.script.clear()

    # ------------------------------------------------------------------ lifecycle API

    def _lifecycle_agent(self, scope: Scope, any_agent: bool) -> str | None:
        return None if any_agent else scope.agent

    @rule(scope=scopes, any_agent=st.booleans(), page_size=st.sampled_from([1, 3, 100]))
    def list_memories(self, scope: Scope, any_agent: bool, page_size: int) -> None:
        listed = list(self.world.store(scope).iter_memories(
            scope.user, agent_name=self._lifecycle_agent(scope, any_agent), tenant_context=scope.tenant_context,
            page_size=page_size,
        ))
        self._check_memories(scope, listed, "list_memories", any_agent=any_agent)
        keys = [m.key for m in listed]
        assert len(keys) == len(set(keys)), "a memory was listed twice across pages"
        assert self.live_memories.get(scope, set()) <= set(keys), "list_memories lost a memory"

    @rule(scope=scopes, any_agent=st.booleans())
    def export_memories(self, scope: Scope, any_agent: bool) -> None:
        out = io.StringIO()
        count = self.world.store(scope).export_memories(
            scope.user, out, agent_name=self._lifecycle_agent(scope, any_agent), tenant_context=scope.tenant_context
        )
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert count == len(lines)
        for record in lines:
            assert record["metadata"]["user_id"] == scope.user
            if not any_agent:
                assert record["metadata"]["agent_name"] == scope.agent
            self._check_text(scope, json.dumps(record, ensure_ascii=False), "export", any_agent=any_agent)
        assert self.live_memories.get(scope, set()) <= {r["key"] for r in lines}

    def _victim_key(self, data: st.DataObject, victim: Scope) -> str | None:
        keys = sorted(self.live_memories.get(victim, set()))
        return data.draw(st.sampled_from(keys)) if keys else None

    @rule(reader=scopes, victim=scopes, data=st.data())
    def get_or_delete_by_foreign_key(self, reader: Scope, victim: Scope, data: st.DataObject) -> None:
        key = self._victim_key(data, victim)
        if key is None or reader == victim:
            return
        store = self.world.store(reader)
        own = reader.owns(victim)
        got = store.get_memory(key, reader.user, agent_name=reader.agent, tenant_context=reader.tenant_context)
        assert (got is not None) == own, f"get_memory: {reader} {'missed' if own else 'read'} {victim}'s key"
        if own:
            return
        deleted = store.delete_memory(key, reader.user, agent_name=reader.agent, tenant_context=reader.tenant_context)
        assert deleted is False, f"{reader} deleted {victim}'s memory by key"
        still = self.world.store(victim).get_memory(key, victim.user, agent_name=victim.agent,
                                                    tenant_context=victim.tenant_context)
        assert still is not None and self.live_markers[key] in still.content

    @rule(scope=scopes, any_agent=st.booleans())
    def forget_user(self, scope: Scope, any_agent: bool) -> None:
        store = self.world.store(scope)
        agent = self._lifecycle_agent(scope, any_agent)
        store.forget_user(scope.user, agent_name=agent, tenant_context=scope.tenant_context)
        gone = [s for s in self.live_memories if scope.owns(s, any_agent=any_agent)]
        for forgotten in gone:
            for key in self.live_memories.pop(forgotten):
                self.live_markers.pop(key, None)
        left = list(store.iter_memories(scope.user, agent_name=agent, tenant_context=scope.tenant_context,
                                        include_expired=True))
        assert left == [], f"forget_user left {len(left)} memories of {scope}"
        for other, keys in self.live_memories.items():  # nobody else lost anything
            for key in keys:
                found = self.world.store(other).get_memory(key, other.user, agent_name=other.agent,
                                                           tenant_context=other.tenant_context)
                assert found is not None, f"forget_user({scope}) deleted {other}'s memory"

    @rule(reader=scopes, victim=scopes)
    def probe_other_tenant_index(self, reader: Scope, victim: Scope) -> None:
        if reader.tenant is None or victim.tenant is None or reader.tenant == victim.tenant:
            return
        client = self.world.index_client(reader.tenant)
        for call in _cross_tenant_calls(self.world.bucket, f"memory-{victim.tenant}", self.world.embedder.dimension):
            with pytest.raises(ClientError) as info:
                call(client)
            assert info.value.response["Error"]["Code"] == "AccessDeniedException"
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _cross_tenant_calls(bucket: str, index: str, dimension: int) -> list[Callable[[Any], Any]]:
    vector = {"float32": [1.0] + [0.0] * (dimension - 1)}
    return [
        lambda c: c.query_vectors(vectorBucketName=bucket, indexName=index, queryVector=vector, topK=5,
                                  returnMetadata=True),
        lambda c: c.list_vectors(vectorBucketName=bucket, indexName=index, returnMetadata=True),
        lambda c: c.get_vectors(vectorBucketName=bucket, indexName=index, keys=["k"], returnMetadata=True),
        lambda c: c.put_vectors(vectorBucketName=bucket, indexName=index,
                                vectors=[{"key": "planted", "data": vector, "metadata": {"user_id": "x"}}]),
        lambda c: c.delete_vectors(vectorBucketName=bucket, indexName=index, keys=["k"]),
    ]
