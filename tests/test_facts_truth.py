"""Facts that stay true under replay, concurrency and long histories (issue 20).

Each test tries what a user meets: a process killed with a conversation still spooled while a
replica stores a newer one; two conversations of one user ending while a slow model summarizes;
a profile whose facts match no question word; a memory that states what a later fact replaced;
control characters typed or generated anywhere; the assistant repeating what it was told.
"""

from __future__ import annotations

import calendar
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from strands import Agent

from strands_s3_vectors_memory import RetrievalSettings, S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._facts import resolve_changes
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.archive._summary_format import (
    ExtractedFact,
    SummaryReply,
    parse_summary_request,
    render_summary_response,
)
from strands_s3_vectors_memory.index._records import FACT_CURRENT, FACT_SUPERSEDED, TYPE_FACT, MemoryScope
from strands_s3_vectors_memory.testing import ScriptedModel, default_responder
from strands_s3_vectors_memory.text import message_text

HELPER = Path(__file__).parent / "plugin_helpers" / "end_conversation.py"
PROMPT = "You are helpful.\n{memory_context}"
AGENT = "assistant"


def _facts(store: S3VectorMemory, user: str) -> dict[str, str]:
    """``user``'s facts: text -> status."""
    return {m.content: str(m.fact_status) for m in store.iter_memories(user, agent_name=AGENT) if m.type == TYPE_FACT}


def _current_facts_in(prompt: str | None) -> list[str]:
    """The facts a system prompt presents as current (a ``<fact>`` without a status)."""
    return re.findall(r"<fact stored_at=\"[^\"]*\">\s*(.*?)\s*</fact>", prompt or "", flags=re.S)


def _agent(plugin: S3VectorMemoryPlugin, model: ScriptedModel | None = None) -> Agent:
    return Agent(model=model or ScriptedModel(), name=AGENT, plugins=[plugin], system_prompt=PROMPT,
                 callback_handler=None)


# --------------------------------------------------------------------------- 1. time goes forward


def test_a_conversation_replayed_after_a_crash_never_supersedes_a_later_one(local_env: Path, tmp_path: Path) -> None:
    """Process 1 ends "I live in Berlin" and is killed with the job spooled; a replica stores "I live in
    Paris now"; process 1's spool is replayed: Paris stays current, Berlin enters as history."""
    child = subprocess.Popen([sys.executable, str(HELPER), "hang", "I live in Berlin."],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ENDED", child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGKILL)  # mid-job: its summary call never returned
    child.wait(timeout=30)
    time.sleep(1.1)  # the replica's conversation happens in a later second (facts carry second precision)

    store = S3VectorMemory()
    replica = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "replica-spool")
    _agent(replica)("I live in Paris now.", invocation_state={"user_id": "u1", "conversation_id": "c2",
                                                               "end_session": True})
    assert replica.flush(60)
    assert _facts(store, "u1") == {"Lives in Paris now": FACT_CURRENT}

    # Process 1 comes back: its plugin (default spool) replays the killed job, conversation c1.
    restarted = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT)
    model = ScriptedModel()
    agent = _agent(restarted, model)
    assert restarted.flush(60)
    facts = {m.content: m for m in store.iter_memories("u1", agent_name=AGENT) if m.type == TYPE_FACT}
    assert {text: m.fact_status for text, m in facts.items()} == {
        "Lives in Paris now": FACT_CURRENT, "Lives in Berlin": FACT_SUPERSEDED}
    berlin, paris = facts["Lives in Berlin"], facts["Lives in Paris now"]
    assert berlin.superseded_by == paris.key and berlin.valid_to == paris.stored_at
    assert berlin.stored_at < paris.stored_at  # Berlin carries the time its conversation happened

    agent("Where do I live these days?", invocation_state={"user_id": "u1", "conversation_id": "c3"})
    assert _current_facts_in(model.system_prompts[-1]) == ["Lives in Paris now"]
    replica.close(5)
    restarted.close(5)


def test_jobs_stored_in_any_order_leave_the_latest_statement_current(local_env: Path) -> None:
    """Three moves stored newest first (retries after an outage): the last move wins, the others are
    history, ended by a later statement."""
    store = S3VectorMemory()
    archiver = Archiver(store, ScriptedModel)
    scope = MemoryScope("alice", AGENT)
    for conversation, city, at in (("c3", "Lisbon", 3_000_000), ("c1", "Berlin", 1_000_000),
                                   ("c2", "Paris", 2_000_000)):
        archiver.archive(ConversationJob(scope, conversation, f"USER: I live in {city}.", at - 60, at))
    facts = {m.content: m for m in store.iter_memories("alice", agent_name=AGENT) if m.type == TYPE_FACT}
    assert {text: m.fact_status for text, m in facts.items()} == {
        "Lives in Lisbon": FACT_CURRENT, "Lives in Berlin": FACT_SUPERSEDED, "Lives in Paris": FACT_SUPERSEDED}
    lisbon = facts["Lives in Lisbon"]
    for old in (facts["Lives in Berlin"], facts["Lives in Paris"]):
        assert old.superseded_by == lisbon.key and old.valid_to == lisbon.stored_at > old.stored_at


def test_an_idle_conversation_carries_the_time_of_its_last_turn(local_env: Path, tmp_path: Path) -> None:
    """A conversation ended by the idle reaper minutes later is dated by its last turn, not the reaping."""
    store = S3VectorMemory()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  writing=WritingSettings(idle_timeout_seconds=1.5))
    said = time.time()
    _agent(plugin)("I work as a nurse.", invocation_state={"user_id": "bob", "conversation_id": "c1"})
    answered = time.time()
    deadline = time.monotonic() + 30
    while not _facts(store, "bob") and time.monotonic() < deadline:
        plugin.flush(1)
        time.sleep(0.1)
    fact = next(m for m in store.iter_memories("bob", agent_name=AGENT) if m.type == TYPE_FACT)
    stated = calendar.timegm(time.strptime(fact.stored_at, "%Y-%m-%dT%H:%M:%SZ"))
    assert int(said) <= stated <= answered  # the turn's second, not the reaper's (1.5 s after the reply)
    plugin.close(5)


# --------------------------------------------------------------------------- 2. one at a time per user


class _SlowSummaries:
    """A summarizing model slower than the read-your-writes wait, counting summaries in flight per user."""

    def __init__(self, seconds: float, hold: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.hold = hold  # summaries start only once it is set (every conversation has ended)
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.most_overall = 0
        self.finished: dict[str, int] = {}

    def __call__(self, messages: Any, system_prompt: str | None) -> Any:
        request = parse_summary_request(message_text(messages[-1], fold=False))
        if request is None:
            return default_responder(messages, system_prompt)
        user = "bob" if "Lisbon" in request.transcript else "alice"
        with self._lock:
            self._running[user] = self._running.get(user, 0) + 1
            self.most[user] = max(self.most.get(user, 0), self._running[user])
            self.most_overall = max(self.most_overall, sum(self._running.values()))
        try:
            if self.hold is not None:
                self.hold.wait(30)
            time.sleep(self.seconds)
            return default_responder(messages, system_prompt)
        finally:
            with self._lock:
                self._running[user] -= 1
                self.finished[user] = self.finished.get(user, 0) + 1


def test_two_conversations_of_one_user_ending_during_a_slow_summary_are_archived_in_turn(
    local_env: Path, tmp_path: Path
) -> None:
    """Two tabs: the second conversation ends while the first one's summary (slower than the
    read-your-writes wait) runs. Only the later move is current; another user is not held up."""
    slow = _SlowSummaries(seconds=1.5)
    store = S3VectorMemory()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(read_your_writes_timeout=0.2),
                                  writing=WritingSettings(writer_workers=4))
    agent = _agent(plugin, ScriptedModel(responder=slow))
    agent("I live in Berlin.", invocation_state={"user_id": "alice", "conversation_id": "tab-1", "end_session": True})
    time.sleep(1.1)  # the second tab's statement is a later second
    agent("I live in Paris now.", invocation_state={"user_id": "alice", "conversation_id": "tab-2",
                                                    "end_session": True})
    agent("I live in Lisbon.", invocation_state={"user_id": "bob", "conversation_id": "c1", "end_session": True})
    assert plugin.flush(60)
    assert _facts(store, "alice") == {"Lives in Paris now": FACT_CURRENT, "Lives in Berlin": FACT_SUPERSEDED}
    assert _facts(store, "bob") == {"Lives in Lisbon": FACT_CURRENT}
    assert slow.most["alice"] == 1  # alice's two summaries never overlapped
    assert slow.most_overall == 2  # bob's ran beside one of alice's
    plugin.close(5)


def test_a_burst_of_one_users_conversations_never_holds_up_another_user(local_env: Path, tmp_path: Path) -> None:
    """One user ends more conversations than there are writer threads (a burst of tabs) while a slow
    model summarizes; another user's conversation, ended after them, is stored while the first user's
    are still being archived one by one, and the first user's summaries never overlap."""
    ended = threading.Event()
    slow = _SlowSummaries(seconds=0.8, hold=ended)
    store = S3VectorMemory()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(read_your_writes_timeout=0.1),
                                  writing=WritingSettings(writer_workers=2))
    agent = _agent(plugin, ScriptedModel(responder=slow))
    for i, city in enumerate(("Berlin", "Paris", "Rome", "Oslo")):
        agent(f"I live in {city} now.", invocation_state={"user_id": "alice", "conversation_id": f"tab-{i}",
                                                          "end_session": True})
    agent("I live in Lisbon.", invocation_state={"user_id": "bob", "conversation_id": "c1", "end_session": True})
    ended.set()
    deadline = time.monotonic() + 30
    while not _facts(store, "bob") and time.monotonic() < deadline:
        time.sleep(0.02)
    alice_done_when_bob_stored = slow.finished.get("alice", 0)
    assert _facts(store, "bob") == {"Lives in Lisbon": FACT_CURRENT}
    assert alice_done_when_bob_stored <= 1  # bob did not wait behind alice's burst (before: 3 of her 4 first)
    assert plugin.flush(60)
    assert slow.finished["alice"] == 4
    assert slow.most["alice"] == 1  # one at a time
    assert list(_facts(store, "alice").values()).count(FACT_CURRENT) == 1
    plugin.close(5)


# --------------------------------------------------------------------------- 3. the profile is there


PROFILE = (
    "I drive a Volvo. I'm vegetarian. I work as a nurse. I have two cats. I play the cello.",
    "I live in Leeds. I speak Polish. I'm allergic to peanuts. I support Leeds United. I run marathons.",
    "I collect stamps. I grow tomatoes. I read crime novels. I bake sourdough bread. I study Japanese.",
)


def test_a_first_turn_gets_the_whole_profile_when_it_fits_the_budget(local_env: Path, tmp_path: Path) -> None:
    """15 current facts, a question whose words match none of them above the cut-off: all 15 are
    injected (the car question needs "Drives a Volvo"); a smaller budget keeps the most relevant."""
    store = S3VectorMemory()
    archiver = Archiver(store, ScriptedModel)
    scope = MemoryScope("carol", AGENT)
    for number, said in enumerate(PROFILE):
        at = 1_000_000 + number * 1000
        archiver.archive(ConversationJob(scope, f"c{number}", f"USER: {said}", at - 60, at))
    profile = set(_facts(store, "carol"))
    assert len(profile) == 15 and "Drives a Volvo" in profile

    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool")
    _agent(plugin, model)("My car needs new tyres, any advice for my model?",
                          invocation_state={"user_id": "carol", "conversation_id": "c9"})
    injected = _current_facts_in(model.system_prompts[-1])
    assert sorted(injected) == sorted(profile)
    plugin.close(5)

    small = ScriptedModel()
    tight = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool-2",
                                 retrieval=RetrievalSettings(memory_budget_chars=700))
    _agent(tight, small)("My car needs new tyres, any advice for my model?",
                         invocation_state={"user_id": "carol", "conversation_id": "c10"})
    kept = _current_facts_in(small.system_prompts[-1])
    assert 0 < len(kept) < 15 and kept == [fact for fact in injected if fact in kept]  # a prefix, in order
    tight.close(5)


# --------------------------------------------------------------------------- 4. no stale value as current


def test_a_memory_stating_a_replaced_value_is_marked_outdated(local_env: Path, tmp_path: Path) -> None:
    """After the move, the old conversation's memory ("I live in Berlin") is marked as older than the
    Paris fact, and the block's header says facts win."""
    store = S3VectorMemory()
    archiver = Archiver(store, ScriptedModel)
    scope = MemoryScope("dave", AGENT)
    archiver.archive(ConversationJob(scope, "c1", "USER: I live in Berlin. My sister Anna visits me often.",
                                     999_000, 1_000_000))
    archiver.archive(ConversationJob(scope, "c2", "USER: I live in Paris now.", 1_999_000, 2_000_000))
    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  # every memory is relevant: the worst case
                                  retrieval=RetrievalSettings(similarity_threshold=0.0))
    _agent(plugin, model)("Does my sister Anna still visit me in Berlin?",
                          invocation_state={"user_id": "dave", "conversation_id": "c3"})
    block = model.system_prompts[-1] or ""
    assert "Lives in Paris now" in _current_facts_in(block) and "Lives in Berlin" not in _current_facts_in(block)
    memories = re.findall(r"<memory ([^>]*)>(.*?)</memory>", block, flags=re.S)
    berlin = [attributes for attributes, content in memories if "Berlin" in content]
    assert berlin, block  # the Anna memory is relevant, and states the old city
    assert all('status="outdated" valid_to="1970-01-24T03:33:20Z"' in attributes for attributes in berlin)
    header = block.split("<memories>")[0].casefold()
    assert "fact" in header and "win" in header and "outdated" in header
    plugin.close(5)



def test_a_memory_relevant_only_through_its_replaced_value_is_left_out(local_env: Path, tmp_path: Path) -> None:
    """Asked where the user lives, the old conversation that said nothing but "I live in Berlin" is left
    out: the block shows the Paris fact, and no Berlin at all."""
    store = S3VectorMemory()
    archiver = Archiver(store, ScriptedModel)
    scope = MemoryScope("hal", AGENT)
    archiver.archive(ConversationJob(scope, "c1", "USER: I live in Berlin.", 999_000, 1_000_000))
    archiver.archive(ConversationJob(scope, "c2", "USER: I live in Paris now.", 1_999_000, 2_000_000))
    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(similarity_threshold=0.0))
    _agent(plugin, model)("Where do I live these days?", invocation_state={"user_id": "hal", "conversation_id": "c3"})
    block = model.system_prompts[-1] or ""
    assert "Lives in Paris now" in _current_facts_in(block)
    assert "Berlin" not in block, block
    plugin.close(5)


# --------------------------------------------------------------------------- 6. nothing unprintable


#: What must never reach storage or a prompt: escape sequences' bytes, C0/C1 controls, bidi controls.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\\[3[0-9]m")


def test_control_characters_never_reach_storage_or_the_prompt(local_env: Path, tmp_path: Path) -> None:
    """Typed by the user (a pasted terminal line, a bidi trick), written by the model in the summary and
    the facts: every stored field is clean, empty facts are rejected, and the block is clean even for
    a record stored before the rule."""
    typed = "USER: \x1b[31mI live in Oslo\x1b[0m. My file is called \u202etxt.exe\u202c.\x07\r\nUSER: I like\x85 tea."
    reply = render_summary_response(
        "The user \x1b]0;owned\x07lives in Oslo\u2066 and likes tea.\x1b[2J",
        [ExtractedFact("Lives in \x1b[1mOslo\x1b[0m"), ExtractedFact("\u202eLikes tea\u202c")],
    )
    store = S3VectorMemory()
    scope = MemoryScope("erin", AGENT)
    Archiver(store, lambda: ScriptedModel([reply])).archive(ConversationJob(scope, "c1", typed, 1_000_000, 1_000_000))
    stored = list(store.iter_memories("erin", agent_name=AGENT))
    assert {m.type for m in stored} == {"summary", "detail", TYPE_FACT}
    for memory in stored:
        assert not _UNPRINTABLE.search(memory.content), repr(memory.content)
    assert _facts(store, "erin") == {"Lives in Oslo": FACT_CURRENT, "Likes tea": FACT_CURRENT}
    summary = next(m.content for m in stored if m.type == "summary")
    assert summary == "The user lives in Oslo and likes tea."

    # A fact with nothing left to say once cleaned is rejected, from the model or from the API.
    said = ("**", "-", '""', "\x1b[0m", "\u202e", "Owns a kayak")
    empty = SummaryReply("", tuple(ExtractedFact(text) for text in said))
    assert [fact.text for fact in resolve_changes(empty, []).facts] == ["Owns a kayak"]
    store.store_conversation_scope(scope, "c0", "", facts=["**", "-", '""', "\x1b[1mIs left-handed\x1b[0m"],
                                   stated_at=500_000)
    assert _facts(store, "erin") == {"Lives in Oslo": FACT_CURRENT, "Likes tea": FACT_CURRENT,
                                     "Is left-handed": FACT_CURRENT}

    # A record written before this rule (or by another tool) is cleaned when it is injected.
    store.store_memory("erin", "\x1b[32mFavourite colour: green\u202e\x9b31m", agent_name=AGENT)
    old = next(m for m in store.iter_memories("erin", agent_name=AGENT) if "green" in m.content)
    assert old.content == "Favourite colour: green"  # cleaned on the way in; now bypass the store:
    target = store._scope_target(scope)
    target.client.put_vectors(vectorBucketName=target.bucket_name, indexName=target.index_name, vectors=[{
        "key": old.key, "data": {"float32": store.embed_documents([old.content])[0]},
        "metadata": {**old.metadata, "content": "\x1b[32mFavourite colour: green\u202e\x9b31m"}}])
    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(similarity_threshold=0.0))
    _agent(plugin, model)("What is my favourite colour, and where do I live?",
                          invocation_state={"user_id": "erin", "conversation_id": "c2"})
    block = model.system_prompts[-1] or ""
    assert "Favourite colour: green" in block and "Lives in Oslo" in block
    assert not _UNPRINTABLE.search(block), repr(block)

    # What the user typed reaches the summarizing model's prompt cleaned too.
    _agent(plugin, model)("\x1b[31mI like jazz\x1b[0m \u202edrums\u202c.", invocation_state={
        "user_id": "erin", "conversation_id": "c3", "end_session": True})
    assert plugin.flush(60)
    request = message_text(model.requests[-1].messages[-1], fold=False)
    assert "I like jazz drums." in request and not _UNPRINTABLE.search(request), repr(request)
    plugin.close(5)


# --------------------------------------------------------------------------- 5. no memory echo


def test_what_the_assistant_restates_from_memory_is_not_stored_as_evidence(local_env: Path, tmp_path: Path) -> None:
    """The demo's echo ("I know 1 current fact(s) about you (Lives in Paris now)...") is not stored in a
    detail record that would outlive the next move; the question a user answers still is."""
    store = S3VectorMemory()
    moved = ConversationJob(MemoryScope("fay", AGENT), "c1", "USER: I live in Paris now.", 999_000, 1_000_000)
    Archiver(store, ScriptedModel).archive(moved)
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool")
    def responder(messages: Any, system_prompt: str | None) -> Any:
        if "bakery" in message_text(messages[-1]):
            return "Congratulations, and you still live in Paris! What will you bake first?"
        return default_responder(messages, system_prompt)

    agent = _agent(plugin, ScriptedModel(responder=responder))
    state = {"user_id": "fay", "conversation_id": "c2"}
    agent("Where do I live? Remind me.", invocation_state=state)
    assert "Lives in Paris now" in str(agent.messages[-1])  # the scripted model restated the memory
    agent("Thanks. I start a new job at the bakery on Monday.", invocation_state=state)
    agent("Sourdough loaves.", invocation_state={**state, "end_session": True})
    assert plugin.flush(60)
    details = [m.content for m in store.iter_memories("fay", agent_name=AGENT)
               if m.type == "detail" and m.conversation_id == "c2"]
    assert any("bakery" in d for d in details)
    assert not [d for d in details if "Paris" in d], details
    assert "ASSISTANT: What will you bake first?\nUSER: Sourdough loaves." in details
    plugin.close(5)


# --------------------------------------------------------------------------- 9. forget reports what it stopped


def test_forget_counts_open_conversations_and_writes_in_flight(local_env: Path, tmp_path: Path) -> None:
    """One conversation of the user is being stored (its summary call is running), another is still open:
    forget stops both and says so; neither is ever stored."""
    summarizing, release = threading.Event(), threading.Event()

    def responder(messages: Any, system_prompt: str | None) -> Any:
        if parse_summary_request(message_text(messages[-1], fold=False)) is not None:
            summarizing.set()
            release.wait(30)
        return default_responder(messages, system_prompt)

    store = S3VectorMemory()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(read_your_writes_timeout=0.2))
    agent = _agent(plugin, ScriptedModel(responder=responder))
    agent("My passport number is X123.", invocation_state={"user_id": "gus", "conversation_id": "c1",
                                                            "end_session": True})
    assert summarizing.wait(30)  # c1 is in flight
    agent("My bank PIN is 9876.", invocation_state={"user_id": "gus", "conversation_id": "c2"})  # c2 stays open
    report = store.forget_user("gus", agent_name=AGENT)
    release.set()
    assert report.pending_cancelled == 2
    assert plugin.flush(60)
    plugin.close(5)
    assert list(store.iter_memories("gus")) == []
