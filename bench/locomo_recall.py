"""Session-level retrieval recall on LoCoMo: the library's ranking against dense-only and BM25-only.

Each LoCoMo conversation is one user; each of its sessions is one stored conversation of that user,
ingested through the library's own write path (``S3VectorMemory(backend="local")`` and
``store_conversation``): LoCoMo's session summary is the summary, and the session's turns, cut by
:func:`~strands_s3_vectors_memory.archive._details.conversation_details` with every speaker kept, are the
details. No LLM is involved. Every question is then asked of its own user, and a method scores a hit
at k when any evidence session is among the first k conversations it ranks.

Methods, all over the same stored records:

* ``dense``: the dense candidates S3 Vectors returns (``candidate_k`` nearest records), sessions by
  their best record's similarity.
* ``bm25``: BM25 over *all* of the user's records (not only the dense candidates), sessions by their
  best record: the strongest lexical baseline available.
* ``default``: ``store.search(user, question, top_k=5)`` with every default (hybrid rerank,
  conversation grouping, the embedder's relevance cut-off), conversations in the order returned.
* ``no cut-off``: the same with ``similarity_threshold=0``: the ranking alone, without the cut-off.

``default`` and ``no cut-off`` run with ``hybrid_search=False`` (today's client-side ranking of the
dense candidates); ``hybrid`` and ``hybrid no cut-off`` are the same searches with the service's
hybrid query (the index is ENHANCED with ``content`` searchable). The bytes each search's
``QueryVectors`` returned (its ``vectors``, as JSON) are reported per method.

Run: ``python3 bench/locomo_recall.py`` (``--help`` for options; ``--data-dir`` keeps the ingested
index between runs).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archive._details import conversation_details
from strands_s3_vectors_memory.index._records import Memory
from strands_s3_vectors_memory.lexical import bm25_scores, tokenize
from strands_s3_vectors_memory.store._search import text_query

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOCOMO_PATH, machine

AGENT = "locomo"
BUCKET = "locomo-bench"
KS = (1, 3, 5)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
METHODS = ("dense", "bm25", "default", "no cut-off", "hybrid", "hybrid no cut-off")
_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D\s*:?\s*(\d+)\s*:")


@dataclass(frozen=True)
class Session:
    """One LoCoMo session, stored as one conversation of its user."""

    user_id: str
    number: int
    summary: str
    transcript: str
    #: When the session took place, e.g. "8 May, 2023" (LoCoMo's ``session_N_date_time``).
    date: str

    @property
    def conversation_id(self) -> str:
        return f"session_{self.number}"


@dataclass(frozen=True)
class Question:
    user_id: str
    text: str
    category: int
    evidence: frozenset[int]


class Metered:
    """The store's client, counting the bytes of every ``QueryVectors`` answer under ``method``, and the
    ``GetVectors`` calls (a search's summaries fetched by key: a second round trip after the query)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.method = ""
        self.bytes: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.fetches: Counter[str] = Counter()

    def get_vectors(self, **params: Any) -> Any:
        self.fetches[self.method] += 1
        return self.inner.get_vectors(**params)

    def query_vectors(self, **params: Any) -> Any:
        response = self.inner.query_vectors(**params)
        self.bytes[self.method] += len(json.dumps(response["vectors"], default=str).encode("utf-8"))
        self.calls[self.method] += 1
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Tally:
    """Hits at each k, per category and overall."""

    hits: dict[tuple[str, int], int] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, category: str, ranked: Sequence[int], evidence: frozenset[int]) -> None:
        for name in (category, "all"):
            self.counts[name] += 1
            for k in KS:
                if evidence.intersection(ranked[:k]):
                    self.hits[(name, k)] += 1

    def recall(self, category: str, k: int) -> float:
        return self.hits[(category, k)] / self.counts[category] if self.counts[category] else 0.0


def evidence_sessions(evidence: Iterable[str]) -> frozenset[int]:
    """Session numbers named by LoCoMo evidence ids, read leniently ("D8:6; D9:17", "D:11:26", "D30:05")."""
    return frozenset(int(n) for item in evidence for n in _EVIDENCE.findall(str(item)))


def _turn_line(turn: Mapping[str, Any]) -> str:
    text = " ".join(str(turn.get("text", "")).split())
    caption = turn.get("blip_caption")
    if caption:
        text = f"{text} [shares {caption}]"
    return f"{turn['speaker']}: {text}"


def load(path: Path, limit: int | None = None) -> tuple[list[Session], list[Question], int]:
    """Sessions and questions of the data set; also how many questions had no usable evidence."""
    sessions: list[Session] = []
    questions: list[Question] = []
    skipped = 0
    for sample in json.loads(path.read_text(encoding="utf-8"))[:limit]:
        user_id = str(sample["sample_id"])
        conversation = sample["conversation"]
        numbers = sorted(int(m.group(1)) for key in conversation if (m := _SESSION_KEY.fullmatch(key)))
        for number in numbers:
            transcript = "\n".join(_turn_line(turn) for turn in conversation[f"session_{number}"])
            summary = sample["session_summary"][f"session_{number}_summary"]
            date = str(conversation.get(f"session_{number}_date_time", "")).split(" on ")[-1].strip()
            sessions.append(Session(user_id, number, summary, transcript, date))
        for qa in sample["qa"]:
            evidence = evidence_sessions(qa.get("evidence", [])) & set(numbers)
            if not evidence:
                skipped += 1
                continue
            questions.append(Question(user_id, str(qa["question"]), int(qa["category"]), evidence))
    return sessions, questions, skipped


def ingest(store: S3VectorMemory, sessions: Sequence[Session], marker: Path) -> float:
    """Store every session through ``store_conversation``; returns records per second (0 if reused)."""
    if marker.exists():
        return 0.0
    started, records = time.perf_counter(), 0
    for session in tqdm(sessions, desc="ingest sessions", unit="session"):
        heading = f"On {session.date}:" if session.date else ""
        details = conversation_details(session.transcript, roles=None, heading=heading)
        keys = store.store_conversation(
            session.user_id, session.conversation_id, session.summary, agent_name=AGENT, details=details
        )
        records += len(keys)
    marker.write_text(str(records), encoding="utf-8")
    return records / (time.perf_counter() - started)


def _session_number(memory: Memory) -> int | None:
    match = _SESSION_KEY.fullmatch(memory.conversation_id or "")
    return int(match.group(1)) if match else None


def shown_sessions(memories: Iterable[Memory]) -> list[int]:
    """The sessions of a search's memories, in the order first shown (a session once)."""
    return list(dict.fromkeys(n for m in memories if (n := _session_number(m)) is not None))


def _by_best_record(scored: Iterable[tuple[float, Memory]]) -> list[int]:
    """Sessions ordered by their best record's score (ties: lower session number first)."""
    best: dict[int, float] = {}
    for score, memory in scored:
        number = _session_number(memory)
        if number is not None and score > best.get(number, float("-inf")):
            best[number] = score
    return sorted(best, key=lambda n: (-best[n], n))


def all_records(store: S3VectorMemory, user_id: str) -> list[Memory]:
    """Every stored record of a user (for the full-corpus BM25 baseline)."""
    client = store._get_s3vectors_client()
    paginator = client.get_paginator("list_vectors")
    memories = [
        Memory.from_vector(vector)
        for page in paginator.paginate(
            vectorBucketName=store.bucket_name, indexName=store.index_name, returnMetadata=True
        )
        for vector in page.get("vectors", [])
    ]
    return [m for m in memories if m.user_id == user_id]


def service_candidates(store: S3VectorMemory, user_id: str, question: str, *, top_k: int | None = None,
                       hybrid: bool = False) -> list[Memory]:
    """What S3 Vectors itself returns: the ``top_k`` (default ``candidate_k``) nearest records of the
    user, or with ``hybrid`` those RRF ranks first over the query vector and the question's words on
    ``content`` (the first turn's query)."""
    params: dict[str, Any] = {
        "vectorBucketName": store.bucket_name,
        "indexName": store.index_name,
        "queryVector": {"float32": store.embedder.embed_query(question)},
        "topK": store.candidate_k if top_k is None else top_k,
        "filter": store.scope(user_id, AGENT).metadata_filter(),
        "returnMetadata": True,
        "returnDistance": True,
    }
    if hybrid:
        params["queryTexts"] = [{"metadataKey": "content", "text": text_query(question)}]
    response = store._get_s3vectors_client().query_vectors(**params)
    return [Memory.from_vector(v) for v in response.get("vectors", [])]


def evaluate(
    store: S3VectorMemory, hybrid: S3VectorMemory, questions: Sequence[Question], meter: Metered
) -> tuple[dict[str, Tally], dict[str, float]]:
    """Rank every question's sessions with each method; also mean latency per method (ms)."""
    tallies = {method: Tally() for method in METHODS}
    elapsed: Counter[str] = Counter()
    corpora: dict[str, tuple[list[Memory], list[list[str]]]] = {}
    for question in tqdm(questions, desc="questions", unit="q"):
        category = CATEGORIES.get(question.category, str(question.category))
        if question.user_id not in corpora:
            records = all_records(store, question.user_id)
            corpora[question.user_id] = (records, [tokenize(m.content) for m in records])

        for method, searcher, threshold in (
            ("default", store, None), ("no cut-off", store, 0.0),
            ("hybrid", hybrid, None), ("hybrid no cut-off", hybrid, 0.0),
        ):
            meter.method = method
            started = time.perf_counter()
            memories = searcher.search(question.user_id, question.text, top_k=5, agent_name=AGENT,
                                       similarity_threshold=threshold)
            elapsed[method] += time.perf_counter() - started
            tallies[method].add(category, shown_sessions(memories), question.evidence)
        meter.method = "dense"

        started = time.perf_counter()
        candidates = service_candidates(store, question.user_id, question.text)
        tallies["dense"].add(
            category, _by_best_record((m.similarity or 0.0, m) for m in candidates), question.evidence
        )
        elapsed["dense"] += time.perf_counter() - started

        started = time.perf_counter()
        records, documents = corpora[question.user_id]
        scores = bm25_scores(tokenize(question.text), documents)
        tallies["bm25"].add(category, _by_best_record(zip(scores, records, strict=True)), question.evidence)
        elapsed["bm25"] += time.perf_counter() - started
    latency = {method: 1000 * elapsed[method] / max(1, len(questions)) for method in METHODS}
    return tallies, latency


def table(tallies: Mapping[str, Tally]) -> str:
    """Markdown table: one row per category, recall@1/@3/@5 per method."""
    header = "| category | n | " + " | ".join(f"{m} @1/@3/@5" for m in METHODS) + " |"
    lines = [header, "|" + "---|" * (len(METHODS) + 2)]
    names = [*CATEGORIES.values(), "all"]
    for name in names:
        count = tallies[METHODS[0]].counts[name]
        if not count:
            continue
        cells = [
            "/".join(f"{tallies[m].recall(name, k):.2f}" for k in KS) for m in METHODS
        ]
        label = f"**{name}**" if name == "all" else name
        lines.append(f"| {label} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=LOCOMO_PATH, help="LoCoMo json (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the ingested index here and reuse it on the next run (default: a temp dir)")
    parser.add_argument("--conversations", type=int, default=None, help="only the first N LoCoMo conversations")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    sessions, questions, skipped = load(args.data, args.conversations)
    with tempfile.TemporaryDirectory(prefix="locomo-bench-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        writer = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir)
        rate = ingest(writer, sessions, data_dir / f"ingested-{len(sessions)}.txt")
        meter = Metered(writer._get_s3vectors_client())
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, client=meter,
                               embedder=writer.embedder, hybrid_search=False)
        hybrid = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, client=meter,
                                embedder=writer.embedder)
        tallies, latency = evaluate(store, hybrid, questions, meter)

    print(f"\nLoCoMo: {len({s.user_id for s in sessions})} conversations, {len(sessions)} sessions, "
          f"{len(questions)} questions ({skipped} without usable evidence skipped)")
    print(f"machine: {machine()}")
    print(f"embedder: {store.embedder.model_id}, candidate_k={store.candidate_k}, "
          f"similarity_threshold={store.similarity_threshold}")
    if rate:
        print(f"ingest: {rate:.1f} records/s (embedding included)")
    print(f"mean latency per question: default search (embed + query + rank) {latency['default']:.1f} ms; "
          f"the same with the query embedding cached {latency['no cut-off']:.1f} ms; hybrid "
          f"{latency['hybrid']:.1f} / {latency['hybrid no cut-off']:.1f} ms; dense query alone "
          f"{latency['dense']:.1f} ms; BM25 over all of the user's records {latency['bm25']:.1f} ms")
    for method in ("default", "hybrid"):
        calls = max(1, meter.calls[method])
        print(f"QueryVectors answer per {method} search: {meter.bytes[method] / calls / 1024:.1f} KiB "
              f"({meter.calls[method]} queries); summaries fetched after the query in "
              f"{meter.fetches[method] / calls:.0%} of them")
    print()
    print(table(tallies))
    if args.json:
        result = {
            m: {name: [t.recall(name, k) for k in KS] for name in t.counts} for m, t in tallies.items()
        }
        answer_bytes = {m: meter.bytes[m] / max(1, meter.calls[m]) for m in ("default", "hybrid")}
        args.json.write_text(json.dumps({"recall": result, "latency_ms": latency, "answer_bytes": answer_bytes},
                                        indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
