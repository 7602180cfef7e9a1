"""Full-text and hybrid search of the engine: analyzers, BM25 upkeep across writes, restarts and old data."""

from __future__ import annotations

import math
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from engine_support import expect_error, vec

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine._text import analyzer
from s3vectors_engine.server import LocalEndpoint

WHERE = {"vectorBucketName": "bkt", "indexName": "idx"}
LANGUAGE_CASES = {
    # language: (stored text, query that only the language's analyzer connects to it, a decoy text)
    "en": ("all connections were restored", "connected", "the link is down"),
    "fr": ("les chanteuses sont arrivées", "chanteuse", "le groupe est parti"),
    "de": ("zwei alte Häuser am See", "Haus", "ein Boot am Ufer"),
    "es": ("dos canciones nuevas", "canción", "un disco viejo"),
    "pt": ("os livros da escola", "livro", "a caneta azul"),
    "it": ("tre cantanti famosi", "cantante", "un pianista bravo"),
    "nl": ("de oude huizen", "huis", "een nieuwe auto"),
    "zh": ("我爱北京天安门", "北京", "北方的京剧很好看"),  # jieba: 北方/京剧 are words; 北京 is not in them
    "ja": ("東京に住んでいます", "東京", "京都と東北へ行く"),  # janome: 京都/東北, not 東京
    "ko": ("서울에서 살고 있습니다", "서울", "부산으로 갑니다"),  # Kiwi splits the particle off 서울에서
}


def _index(client: Any, configs: list[dict[str, str]], dimension: int = 4) -> None:
    client.create_vector_bucket(vectorBucketName="bkt")
    client.create_index(
        **WHERE, dataType="float32", dimension=dimension, distanceMetric="cosine",
        metadataConfiguration={"textSearchConfigurations": configs},
    )


def _text_keys(client: Any, key: str, text: str, top_k: int = 10) -> list[str]:
    found = client.query_vectors(**WHERE, topK=top_k, queryTexts=[{"metadataKey": key, "text": text}])
    return [v["key"] for v in found["vectors"]]


def test_each_language_analyzer_matches_what_the_standard_one_cannot(tmp_path: Path) -> None:
    with LocalS3VectorsClient(tmp_path) as client:
        _index(client, [{"metadataKey": lang, "language": lang} for lang in LANGUAGE_CASES])
        client.put_vectors(**WHERE, vectors=[
            item
            for i, (lang, (text, _query, decoy)) in enumerate(LANGUAGE_CASES.items())
            for item in (
                {"key": f"{lang}-hit", "data": {"float32": vec(2 * i)}, "metadata": {lang: text}},
                {"key": f"{lang}-decoy", "data": {"float32": vec(2 * i + 1)}, "metadata": {lang: decoy}},
            )
        ])
        for lang, (_text, query, _decoy) in LANGUAGE_CASES.items():
            assert _text_keys(client, lang, query) == [f"{lang}-hit"], lang
    with LocalS3VectorsClient(tmp_path / "std") as client:  # the same words, the standard analyzer
        _index(client, [{"metadataKey": "t"}])
        client.put_vectors(**WHERE, vectors=[
            {"key": lang, "data": {"float32": vec(i)}, "metadata": {"t": text}}
            for i, (lang, (text, _q, _d)) in enumerate(LANGUAGE_CASES.items())
        ])
        assert _text_keys(client, "t", LANGUAGE_CASES["en"][1]) == []
        assert _text_keys(client, "t", LANGUAGE_CASES["ko"][1]) == []


def test_bm25_follows_updates_deletes_compaction_and_restart(tmp_path: Path) -> None:
    """The postings track every write; slot compaction renumbers them; a new process rebuilds them."""
    n = 1500
    with LocalS3VectorsClient(tmp_path) as client:
        _index(client, [{"metadataKey": "text"}])
        for start in range(0, n, 500):
            client.put_vectors(**WHERE, vectors=[
                {"key": f"k{i}", "data": {"float32": vec(i)}, "metadata": {"text": f"note number code{i} common"}}
                for i in range(start, min(n, start + 500))
            ])
        assert _text_keys(client, "text", "code1499") == ["k1499"]
        for start in range(0, 1200, 500):  # > 1024 dead slots and > a quarter: the matrix compacts
            client.delete_vectors(**WHERE, keys=[f"k{i}" for i in range(start, min(1200, start + 500))])
        client.put_vectors(**WHERE, vectors=[
            {"key": "k1300", "data": {"float32": vec(1300)}, "metadata": {"text": "rewritten entirely"}}
        ])
        assert _text_keys(client, "text", "code5") == []
        assert _text_keys(client, "text", "code1300") == []
        assert _text_keys(client, "text", "rewritten") == ["k1300"]
        assert _text_keys(client, "text", "code1201 code1499", top_k=5)[:2] == ["k1201", "k1499"]
        assert len(_text_keys(client, "text", "common", top_k=100)) == 100
    with LocalS3VectorsClient(tmp_path) as reopened:
        assert _text_keys(reopened, "text", "code1499") == ["k1499"]
        assert _text_keys(reopened, "text", "code5") == []
        assert _text_keys(reopened, "text", "rewritten") == ["k1300"]


def test_bm25_scores_are_okapi_over_the_index_within_the_filtered_scope(tmp_path: Path) -> None:
    """Every score ``returnScores`` reports is Okapi BM25 (k1 1.2, b 0.75, idf over the whole index),
    after updates and deletes, for a scope larger and smaller than a common word's posting; best first."""
    rng = random.Random(5)
    words = [f"w{i}" for i in range(40)]
    texts = {f"k{i}": " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + " on" for i in range(500)}
    users = {key: ("big" if i % 10 else "small") for i, key in enumerate(texts)}
    with LocalS3VectorsClient(tmp_path) as client:
        _index(client, [{"metadataKey": "text"}])
        client.put_vectors(**WHERE, vectors=[
            {"key": key, "data": {"float32": vec(i)}, "metadata": {"text": texts[key], "user": users[key]}}
            for i, key in enumerate(texts)
        ])
        for key in rng.sample(sorted(texts), 60):  # deletes and rewrites move postings and lengths
            if rng.random() < 0.5:
                client.delete_vectors(**WHERE, keys=[key])
                del texts[key]
            else:
                texts[key] = "on w1 w1 " + rng.choice(words)
                client.put_vectors(**WHERE, vectors=[{"key": key, "data": {"float32": vec(1)},
                                                      "metadata": {"text": texts[key], "user": users[key]}}])
        analyze = analyzer(None)
        tokens = {key: analyze(text) for key, text in texts.items()}
        average = sum(map(len, tokens.values())) / len(tokens)

        def okapi(key: str, query: list[str]) -> float:
            score = 0.0
            for term in dict.fromkeys(query):
                df = sum(1 for toks in tokens.values() if term in toks)
                tf = tokens[key].count(term)
                if tf:
                    idf = math.log(1.0 + (len(tokens) - df + 0.5) / (df + 0.5))
                    score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(tokens[key]) / average))
            return score

        for user in ("big", "small"):
            for query in ("w1 on", "w3 w7 w7", "on"):
                found = client.query_vectors(**WHERE, topK=100, returnScores=True, filter={"user": user},
                                             queryTexts=[{"metadataKey": "text", "text": query}])["vectors"]
                expected = {k: okapi(k, analyze(query)) for k in texts if users[k] == user}
                expected = {k: v for k, v in expected.items() if v > 0}
                best = sorted(expected, key=lambda k: -expected[k])[:100]
                got = {v["key"]: v["scores"]["bm25Scores"][0]["score"] for v in found}
                assert len(got) == len(best), (user, query)
                assert all(got[k] == pytest.approx(expected[k], rel=1e-9) for k in got), (user, query)
                scores = [got[v["key"]] for v in found]
                assert scores == sorted(scores, reverse=True)
                assert min(scores) >= expected[best[-1]] - 1e-9  # the 100 best, not any 100


def test_hybrid_finds_by_words_what_the_vector_search_misses(tmp_path: Path) -> None:
    """A record far from the query vector (outside its top 100) still ranks by its exact identifier."""
    with LocalS3VectorsClient(tmp_path) as client:
        _index(client, [{"metadataKey": "text"}], dimension=8)
        query = vec(0, 8)
        far = [-x for x in query]
        records = [{"key": f"near{i}", "data": {"float32": vec(i + 1, 8)}, "metadata": {"text": f"order code{i:05d}"}}
                   for i in range(300)]
        records.append({"key": "target", "data": {"float32": far}, "metadata": {"text": "order code99999"}})
        client.put_vectors(**WHERE, vectors=records[:250])
        client.put_vectors(**WHERE, vectors=records[250:])
        dense = client.query_vectors(**WHERE, topK=100, queryVector={"float32": query})["vectors"]
        assert "target" not in [v["key"] for v in dense]
        hybrid = client.query_vectors(**WHERE, topK=5, queryVector={"float32": query}, returnScores=True,
                                      queryTexts=[{"metadataKey": "text", "text": "code99999"}])["vectors"]
        # RRF: first on the text side weighs as much as first on the vector side (1 / 61 each)
        assert "target" in [v["key"] for v in hybrid[:2]]
        target = next(v for v in hybrid if v["key"] == "target")
        assert "vectorDistance" not in target["scores"]  # it matched the text side only


def test_boto3_paginator_pages_a_query_over_rest(tmp_path: Path) -> None:
    engine = LocalS3VectorsClient(tmp_path, query_page_size=3)
    with LocalEndpoint(engine) as endpoint:
        client = boto3.client("s3vectors", endpoint_url=endpoint.url, region_name="us-east-1",
                              aws_access_key_id="AKID", aws_secret_access_key="secret")
        _index(client, [{"metadataKey": "text"}])
        client.put_vectors(**WHERE, vectors=[
            {"key": f"k{i}", "data": {"float32": vec(i)}, "metadata": {"text": f"shared word{i}"}} for i in range(10)
        ])
        whole = client.query_vectors(**WHERE, topK=8, queryVector={"float32": vec(0)})
        assert len(whole["vectors"]) == 3 and whole["nextToken"]
        pages = list(client.get_paginator("query_vectors").paginate(
            **WHERE, topK=8, queryVector={"float32": vec(0)}, queryTexts=[{"metadataKey": "text", "text": "shared"}]
        ))
        keys = [v["key"] for page in pages for v in page["vectors"]]
        assert [len(p["vectors"]) for p in pages] == [3, 3, 2]
        assert len(set(keys)) == 8 and keys[0] == "k0"
        assert all(p["distanceMetric"] == "cosine" for p in pages)


def test_an_index_written_before_index_modes_reads_as_classic_and_upgrades(tmp_path: Path) -> None:
    """A directory from an engine without index modes (no mode columns) opens, reads CLASSIC, moves to ENHANCED."""
    with LocalS3VectorsClient(tmp_path) as client:
        client.create_vector_bucket(vectorBucketName="bkt")
        client.create_index(**WHERE, dataType="float32", dimension=4, distanceMetric="cosine")
        client.put_vectors(**WHERE, vectors=[{"key": "a", "data": {"float32": vec(1)}, "metadata": {"t": "old words"}}])
    catalog = sqlite3.connect(tmp_path / "catalog.sqlite3")
    catalog.execute("ALTER TABLE buckets DROP COLUMN default_mode")
    catalog.commit()
    catalog.close()
    (db,) = (tmp_path / "buckets").glob("bkt-*.sqlite3")
    bucket_db = sqlite3.connect(db)
    bucket_db.execute("ALTER TABLE indexes DROP COLUMN mode")
    bucket_db.execute("ALTER TABLE indexes DROP COLUMN text_config")
    bucket_db.commit()
    bucket_db.close()
    with LocalS3VectorsClient(tmp_path) as client:
        assert client.get_index(**WHERE)["index"]["indexMode"] == "CLASSIC"
        assert client.get_vector_bucket(vectorBucketName="bkt")["vectorBucket"]["defaultIndexMode"] == "CLASSIC"
        client.update_index_mode(**WHERE, indexMode="ENHANCED")
        client.update_metadata_configuration(**WHERE, add={"textSearchConfigurations": [{"metadataKey": "t"}]})
        deadline = time.monotonic() + 30
        while client.get_index(**WHERE)["index"]["metadataConfiguration"]["textSearchConfigurations"][0][
            "status"
        ] != "ACTIVE":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert _text_keys(client, "t", "words") == ["a"]
        client.update_index_mode(**WHERE, indexMode="ENHANCED")  # twice is fine


def test_query_texts_alone_no_longer_crashes(tmp_path: Path) -> None:
    """Today's main raised KeyError('queryVector') embedded; a text query on an index without text keys is a 400."""
    with LocalS3VectorsClient(tmp_path) as client:
        client.create_vector_bucket(vectorBucketName="bkt")
        client.create_index(**WHERE, dataType="float32", dimension=4, distanceMetric="cosine")
        expect_error("ValidationException", 400, client.query_vectors, **WHERE, topK=1,
                     queryTexts=[{"metadataKey": "text", "text": "hello"}])


@pytest.mark.parametrize(("language", "module", "extra"), [
    ("zh", "jieba", "cjk"), ("ja", "janome", "cjk"), ("ko", "kiwipiepy", "cjk"),
    ("en", "snowballstemmer", "local"), ("de", "snowballstemmer", "local"),
])
def test_language_analyzers_need_their_library(
    language: str, module: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the extra (a core install has no stemmer) the configuration is refused up front, naming the
    extra, not with a ModuleNotFoundError at the first write."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with LocalS3VectorsClient(tmp_path) as client:
        client.create_vector_bucket(vectorBucketName="bkt")
        error = expect_error("ValidationException", 400, client.create_index, **WHERE, dataType="float32",
                             dimension=4, distanceMetric="cosine",
                             metadataConfiguration={"textSearchConfigurations": [{"metadataKey": "t",
                                                                                  "language": language}]})
        message = error.response["Error"]["Message"]
        assert module in message and f"pip install 'strands-s3-vectors-memory[{extra}]'" in message


def test_starts_with_is_exact_on_strings_and_list_elements(tmp_path: Path) -> None:
    with LocalS3VectorsClient(tmp_path) as client:
        client.create_vector_bucket(vectorBucketName="bkt")
        client.create_index(**WHERE, dataType="float32", dimension=4, distanceMetric="cosine")
        values: dict[str, Any] = {"a": "abc", "b": ["x", "abd"], "c": "xab", "d": 5, "e": "ABc", "f": "ab"}
        client.put_vectors(**WHERE, vectors=[
            {"key": k, "data": {"float32": vec(i)}, "metadata": {"tag": v, "n": i}}
            for i, (k, v) in enumerate(values.items())
        ])

        def keys(flt: dict[str, Any]) -> set[str]:
            found = client.query_vectors(**WHERE, topK=10, queryVector={"float32": vec(0)}, filter=flt)
            return {v["key"] for v in found["vectors"]}

        assert keys({"tag": {"$startsWith": "ab"}}) == {"a", "b", "f"}
        assert keys({"$or": [{"tag": {"$startsWith": "abc"}}, {"n": 2}]}) == {"a", "c"}
        assert keys({"tag": {"$startsWith": "ab"}, "n": {"$gte": 1}}) == {"b", "f"}
        expect_error("ValidationException", 400, client.query_vectors, **WHERE, topK=1,
                     queryVector={"float32": vec(0)}, filter={"tag": {"$startsWith": 3}})
