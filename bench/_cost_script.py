"""The conversations ``bench/costs.py`` runs, and the counters it puts around a store's dependencies.

Kept free of imports from ``strands_s3_vectors_memory`` (as ``_turns.py`` is) so the 0.3.0 runner
(``_costs_original.py``), which imports the *original* package under that name, uses the very same
conversations, replies and counters.

What is counted is what each dependency is asked to do, recorded as plain events with the phase
of the conversation they happened in (``first_turn``, ``later_turn``, ``end_session``: the ending
turn plus the background write, waited for before the next conversation starts):

* ``model``: one per model call: the system prompt, the messages' text and the reply;
* ``embed``: one per text embedded (Bedrock embeds one text per ``InvokeModel`` call), with its purpose;
* ``s3vectors``: one per S3 Vectors API call, with the size of every vector a ``PutVectors`` carries;
* ``s3``: one per S3 request of an S3 spool (recorded by ``costs.py`` through a botocore event hook).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from _common import IRRELEVANT_QUERIES, PERSONAS
from _turns import BASE_PROMPT

AGENT = "assistant"
#: Characters of each scripted assistant reply: a typical chat answer (about 200 tokens of English).
DEFAULT_REPLY_CHARS = 800

#: Follow-ups of a returning user's later conversations (the first ones tell the persona's story).
_FOLLOW_UPS = (
    "Good to know. Can you make that a bit more specific to my situation?",
    "Perfect. What would you do first if you were me?",
    "Thanks. Could you put that into a short checklist?",
)
#: What the one-off users say about themselves in their only conversation.
_ONE_OFF_STATEMENTS = (
    "For context, I'm a secondary school teacher in Leeds and I mostly work from home on Fridays.",
    "I'm a student nurse and I commute by bike, so I'm always short on time in the mornings.",
    "I work in logistics and I'm learning to play the piano in the evenings.",
    "I'm retired, I live by the sea and I volunteer at the local library twice a week.",
    "I'm a freelance photographer and I travel a lot for weddings in the summer.",
    "I have two kids and a small vegetable garden that takes up most of my weekends.",
    "I'm a junior accountant and I'm studying for my professional exams this year.",
    "I moved to Lisbon last year and I'm still getting used to the language.",
)
_FILLER = (
    "Here is a practical way to approach it, step by step.",
    "Start with what you already have at hand and keep the first attempt simple.",
    "It helps to set aside a fixed time for it, so it does not compete with everything else.",
    "If something does not work the first time, change one thing at a time and note the result.",
    "Many people find that a short plan written down in advance saves a lot of effort later.",
    "Keep an eye on how you feel about it after a week, and adjust the pace accordingly.",
    "There are a few alternatives worth considering if the first option does not suit you.",
    "Let me know if you would like more detail on any of these points.",
)


@dataclass(frozen=True)
class Conversation:
    """One conversation of one user: what the user says, turn by turn (the last turn ends it)."""

    user_id: str
    conversation_id: str
    turns: tuple[str, ...]


def conversations(count: int | None = None) -> list[Conversation]:
    """The scripted conversations, in the order they are run (``count``: the first ``count`` only).

    Five returning users (the labelled personas of ``_common.py``) have four or five conversations
    each: a first-turn request their earlier conversations help answer, then (in the first ones) what
    they tell about themselves, a follow-up and a goodbye that ends the session. Eight one-off users
    have a single conversation each (an everyday request, a remark about themselves, goodbye). The
    users take turns, so a returning user's next conversation comes after other users' ones:
    30 conversations, 22 of them by returning users (17 of those can find earlier memories).
    """
    rounds: list[list[Conversation]] = []
    for persona in PERSONAS:
        for number, opener in enumerate(persona.relevant):
            told = persona.conversations[number][1] if number < len(persona.conversations) else \
                _FOLLOW_UPS[number % len(_FOLLOW_UPS)]
            turns = (opener, told, "That sounds good, tell me more about the second option.",
                     "Thanks, that's all for today. Bye!")
            while len(rounds) <= number:
                rounds.append([])
            rounds[number].append(Conversation(persona.user_id, f"{persona.user_id}-{number + 1}", turns))
    for number, statement in enumerate(_ONE_OFF_STATEMENTS):
        turns = (IRRELEVANT_QUERIES[number], statement, "Great, thanks. Bye!")
        rounds[number % len(rounds)].append(Conversation(f"guest-{number + 1:02d}", "only", turns))
    ordered = [conversation for round_ in rounds for conversation in round_]
    return ordered if count is None else ordered[:count]


def padded_reply(reply: str, chars: int) -> str:
    """``reply`` followed by generic advice sentences, up to about ``chars`` characters."""
    parts = [reply]
    length = len(reply)
    index = 0
    while length < chars:
        sentence = _FILLER[index % len(_FILLER)]
        parts.append(sentence)
        length += len(sentence) + 1
        index += 1
    return " ".join(parts)


def memory_block(system_prompt: str | None, base_prompt: str = BASE_PROMPT) -> str:
    """The memory block a plugin put into ``{memory_context}`` of a chat call's system prompt ("" if none)."""
    prefix, _, suffix = base_prompt.partition("{memory_context}")
    prompt = system_prompt or ""
    if not prompt.startswith(prefix) or not prompt.endswith(suffix):
        return ""
    return prompt[len(prefix):len(prompt) - len(suffix)].strip()


class Ledger:
    """Every counted event, tagged with the phase the driver is in (writer threads included)."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self.events.append({"kind": kind, "phase": self.phase, **fields})


#: The S3 Vectors operations (boto3 method -> API name) a store may call.
S3VECTORS_OPERATIONS = {
    "put_vectors": "PutVectors", "get_vectors": "GetVectors", "list_vectors": "ListVectors",
    "query_vectors": "QueryVectors", "delete_vectors": "DeleteVectors", "get_index": "GetIndex",
    "create_index": "CreateIndex", "delete_index": "DeleteIndex", "list_indexes": "ListIndexes",
    "get_vector_bucket": "GetVectorBucket", "create_vector_bucket": "CreateVectorBucket",
    "list_vector_buckets": "ListVectorBuckets",
}


def vector_size(vector: Mapping[str, Any], non_filterable: Iterable[str]) -> dict[str, int]:
    """The parts of one vector S3 Vectors bills by: dimension, key bytes, metadata bytes (UTF-8 JSON).

    Metadata is measured as its compact JSON (``{"user_id":"alice",...}``): keys and values, plus a
    few bytes of punctuation per entry; ``filterable_bytes`` is the part outside ``non_filterable``.
    """
    metadata = dict(vector.get("metadata") or {})
    hidden = set(non_filterable)
    filterable = {k: v for k, v in metadata.items() if k not in hidden}
    return {
        "dimension": len((vector.get("data") or {}).get("float32") or []),
        "key_bytes": len(str(vector["key"]).encode("utf-8")),
        "metadata_bytes": _json_bytes(metadata) if metadata else 0,
        "filterable_bytes": _json_bytes(filterable) if filterable else 0,
    }


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class CountingS3Vectors:
    """An S3 Vectors client (boto3's or the embedded engine's) that records every API call it makes."""

    def __init__(self, inner: Any, ledger: Ledger, non_filterable: Sequence[str]) -> None:
        self._inner = inner
        self._ledger = ledger
        self._non_filterable = tuple(non_filterable)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        operation = S3VECTORS_OPERATIONS.get(name)
        if operation is None:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            fields: dict[str, Any] = {}
            if name == "put_vectors":
                vectors = kwargs.get("vectors") or []
                fields["vectors"] = [vector_size(v, self._non_filterable) for v in vectors]
                fields["keys"] = [str(v["key"]) for v in vectors]
            elif name == "get_vectors":
                fields["key_count"] = len(kwargs.get("keys") or [])
            elif name == "query_vectors":
                fields["top_k"] = kwargs.get("topK")
            self._ledger.add("s3vectors", op=operation, **fields)
            return attribute(*args, **kwargs)

        return counted


def record_embedding(ledger: Ledger, purpose: str, texts: Iterable[str]) -> None:
    """One ``embed`` event per text: Bedrock's embedding models take one text per ``InvokeModel``."""
    for text in texts:
        ledger.add("embed", purpose=purpose, text=text)


def recording_responder(ledger: Ledger, summary_call: Callable[[Any, str | None], bool],
                        answer: Callable[[Any, str | None], str]) -> Callable[[Any, str | None], str]:
    """A scripted model's responder that records each call (system prompt, messages' text, reply)."""

    def respond(messages: Any, system_prompt: str | None) -> str:
        reply = answer(messages, system_prompt)
        texts = [block["text"] for message in messages for block in message.get("content", [])
                 if isinstance(block, Mapping) and isinstance(block.get("text"), str)]
        ledger.add("model", call="summary" if summary_call(messages, system_prompt) else "chat",
                   system_prompt=system_prompt or "", messages=texts, reply=reply)
        return reply

    return respond


def drive(agent: Any, script: Sequence[Conversation], ledger: Ledger, *, after_conversation: Callable[[], None],
          before_conversation: Callable[[], None] = lambda: None) -> None:
    """Run ``script`` on ``agent``, one conversation at a time, tagging each phase.

    Each conversation starts from an empty ``agent.messages`` (a new session); after its ending
    turn, ``after_conversation`` waits for the background write, still in the ``end_session`` phase.
    """
    for conversation in script:
        before_conversation()
        agent.messages.clear()
        last = len(conversation.turns) - 1
        for number, text in enumerate(conversation.turns):
            ledger.phase = "first_turn" if number == 0 else "end_session" if number == last else "later_turn"
            state = {"user_id": conversation.user_id, "conversation_id": conversation.conversation_id,
                     "end_session": number == last}
            agent(text, invocation_state=state)
        after_conversation()
        ledger.phase = "idle"
