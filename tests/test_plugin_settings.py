"""The plugin's settings: three groups users build, the common knobs as keywords, bad values refused by name.

That each group reaches what it controls is shown where that behaviour is tested (read-your-writes,
thresholds and budgets in test_plugin.py / test_facts_truth.py; idle timeouts, eviction and writer
threads in test_conversation_ends.py; durable turns in test_turn_buffer.py; details and summary length
in test_plugin.py / reliability/test_bad_input.py; inline writes in test_examples.py). Here: the
settings' own contract.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import pytest
from strands import Agent

import strands_s3_vectors_memory
from strands_s3_vectors_memory import (
    ConfigurationError,
    RetrievalSettings,
    S3VectorMemory,
    S3VectorMemoryPlugin,
    SummarySettings,
    WritingSettings,
)
from strands_s3_vectors_memory.archive._summarizer import SUMMARY_PROMPT
from strands_s3_vectors_memory.plugin._settings import MovedKeywords
from strands_s3_vectors_memory.testing import ScriptedModel
from support import PROMPT, chat_prompts, is_summary_request, say

GROUPS = {"retrieval": RetrievalSettings, "writing": WritingSettings, "summary": SummarySettings}

#: Every keyword S3VectorMemoryPlugin took before the settings were grouped, with a valid non-default value.
PREVIEW_KEYWORDS: dict[str, object] = {
    "similarity_threshold": 0.25, "memory_budget_chars": 1234, "read_your_writes_timeout": 0.5,
    "inline_timeout": 7.0, "writer_workers": 2, "flush_at_exit": False, "durable_turns": True,
    "idle_timeout_seconds": 42.0, "max_open_conversations": 17, "summary_prompt": "Summarize briefly.",
    "summary_max_chars": 300, "store_details": False, "ttl_seconds": 3600.0, "extract_facts": False,
}

BAD_VALUES: list[tuple[type, str, object]] = [
    (RetrievalSettings, "top_k", 0),
    (RetrievalSettings, "top_k", 101),
    (RetrievalSettings, "top_k", "5"),
    (RetrievalSettings, "similarity_threshold", 1.5),
    (RetrievalSettings, "memory_budget_chars", 0),
    (RetrievalSettings, "read_your_writes_timeout", -1),
    (RetrievalSettings, "fetch_summaries", "yes"),
    (WritingSettings, "spool_dir", 3),
    (WritingSettings, "write_mode", "later"),
    (WritingSettings, "inline_timeout", 0),
    (WritingSettings, "writer_workers", 0),
    (WritingSettings, "flush_at_exit", "false"),
    (WritingSettings, "durable_turns", 1),
    (WritingSettings, "idle_timeout_seconds", 0),
    (WritingSettings, "max_open_conversations", 0),
    (SummarySettings, "summary_prompt", "  "),
    (SummarySettings, "summary_max_chars", 0),
    (SummarySettings, "store_details", None),
    (SummarySettings, "ttl_seconds", 0),
    (SummarySettings, "extract_facts", "yes"),
    (SummarySettings, "related_facts", -1),
]


def _home(name: str) -> str:
    """The plugin keyword of the group holding ``name``."""
    (group,) = [key for key, cls in GROUPS.items() if name in {f.name for f in dataclasses.fields(cls)}]
    return group


@pytest.mark.parametrize(("group", "name", "value"), BAD_VALUES, ids=[f"{n}={v!r}" for _, n, v in BAD_VALUES])
def test_a_bad_value_is_refused_when_its_group_is_built_naming_the_setting(group: type, name: str,
                                                                          value: object) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name} must be .*got {re.escape(repr(value))}$"):
        group(**{name: value})


def test_a_bad_value_given_as_a_keyword_is_refused_when_the_plugin_is_built(local_env: Path) -> None:
    store = S3VectorMemory()
    with pytest.raises(ConfigurationError, match=r"^top_k must be"):
        S3VectorMemoryPlugin(store, PROMPT, top_k=0)
    with pytest.raises(ConfigurationError, match=r"^write_mode must be"):
        S3VectorMemoryPlugin(store, PROMPT, write_mode="later")  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigurationError, match=r"^writer_workers must be"):
        S3VectorMemoryPlugin(store, PROMPT, writer_workers=0)


def test_groups_are_frozen_values_exported_from_the_package() -> None:
    for cls in GROUPS.values():
        assert cls.__name__ in strands_s3_vectors_memory.__all__
        assert getattr(strands_s3_vectors_memory, cls.__name__) is cls
        with pytest.raises(dataclasses.FrozenInstanceError):
            cls().__setattr__(dataclasses.fields(cls)[0].name, None)


def test_the_common_keywords_land_in_their_groups_beside_the_groups_given(local_env: Path, tmp_path: Path) -> None:
    plugin = S3VectorMemoryPlugin(
        S3VectorMemory(), PROMPT, top_k=2, spool_dir=tmp_path / "spool", write_mode="inline",
        retrieval=RetrievalSettings(similarity_threshold=0.3), writing=WritingSettings(inline_timeout=5.0),
    )
    assert plugin.retrieval == RetrievalSettings(top_k=2, similarity_threshold=0.3)
    assert plugin.writing == WritingSettings(spool_dir=tmp_path / "spool", write_mode="inline", inline_timeout=5.0)
    assert plugin.summary == SummarySettings()


def test_a_setting_given_both_as_keyword_and_in_its_group_must_agree(local_env: Path) -> None:
    store = S3VectorMemory()
    with pytest.raises(ConfigurationError, match=r"top_k is given twice: top_k=3 and retrieval=RetrievalSettings\("):
        S3VectorMemoryPlugin(store, PROMPT, top_k=3, retrieval=RetrievalSettings(top_k=7))
    assert S3VectorMemoryPlugin(store, PROMPT, top_k=7, retrieval=RetrievalSettings(top_k=7)).retrieval.top_k == 7


@pytest.mark.parametrize("name", sorted(PREVIEW_KEYWORDS))
def test_a_preview_keyword_warns_naming_its_group_and_still_applies(local_env: Path, name: str) -> None:
    value = PREVIEW_KEYWORDS[name]
    group = _home(name)
    kwargs: dict[str, Any] = {name: value}
    with pytest.warns(DeprecationWarning, match=rf"{group}={GROUPS[group].__name__}\({name}=") as caught:
        plugin = S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, **kwargs)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert getattr(getattr(plugin, group), name) == value


def test_the_deprecated_keywords_are_exactly_the_previews_settings_now_in_a_group() -> None:
    """MovedKeywords (what type checkers see) matches the groups' fields, name and type."""
    assert set(MovedKeywords.__optional_keys__) == set(PREVIEW_KEYWORDS)
    for name, annotation in MovedKeywords.__annotations__.items():
        (field,) = [f for f in dataclasses.fields(GROUPS[_home(name)]) if f.name == name]
        assert getattr(annotation, "__forward_arg__", annotation) == field.type


def test_unknown_and_dropped_keywords_are_type_errors(local_env: Path) -> None:
    kwargs: dict[str, Any] = {"conversation_ttl_seconds": 60}  # deprecated before 1.0, never documented: gone
    with pytest.raises(TypeError, match="conversation_ttl_seconds"):
        S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, **kwargs)
    kwargs = {"related_facts": 5}  # a setting of a group, never a keyword of the plugin
    with pytest.raises(TypeError, match="related_facts"):
        S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, **kwargs)


@pytest.mark.parametrize("how", ["keyword", "group"])
def test_top_k_bounds_the_memories_a_first_turn_is_shown(local_env: Path, how: str) -> None:
    store = S3VectorMemory()
    for text in ("I play chess on Sundays.", "I play the cello on Mondays.", "I play tennis on Fridays."):
        store.store_memory("u1", text, agent_name="assistant")
    retrieval = RetrievalSettings(similarity_threshold=0.0)
    chosen = {"top_k": 2} if how == "keyword" else {}
    plugin = S3VectorMemoryPlugin(store, PROMPT, **chosen,
                                  retrieval=retrieval if how == "keyword" else dataclasses.replace(retrieval, top_k=2),
                                  writing=WritingSettings(flush_at_exit=False))
    model = ScriptedModel()
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, callback_handler=None)
    say(agent, "What do I play?", "u1", "c1")
    shown = [word for word in ("chess", "cello", "tennis") if word in chat_prompts(model)[-1]]
    assert len(shown) == 2
    plugin.close(10)


@pytest.mark.parametrize("how", ["group", "preview keywords"])
def test_the_summary_group_is_what_the_archiver_stores_with(local_env: Path, how: str) -> None:
    """The group reaches the summary call (its prompt) and the records (no details, no facts, expiry)."""
    store = S3VectorMemory()
    summary = SummarySettings(summary_prompt=f"{SUMMARY_PROMPT} Keep it to one line.", store_details=False,
                              extract_facts=False, ttl_seconds=3600.0)
    if how == "group":
        plugin = S3VectorMemoryPlugin(store, PROMPT, summary=summary, writing=WritingSettings(flush_at_exit=False))
    else:
        with pytest.warns(DeprecationWarning):
            plugin = S3VectorMemoryPlugin(store, PROMPT, flush_at_exit=False, summary_prompt=summary.summary_prompt,
                                          store_details=False, extract_facts=False, ttl_seconds=3600.0)
    model = ScriptedModel()
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, callback_handler=None)
    say(agent, "My locker number is 4711.", "u1", "c1", end=True)
    assert plugin.flush(30)
    (asked,) = [request.system_prompt or "" for request in model.requests if is_summary_request(request)]
    assert asked.startswith(summary.summary_prompt)
    stored = store.list_memories("u1", agent_name="assistant").memories
    assert [memory.type for memory in stored] == ["summary"]
    assert stored[0].expires_at is not None and abs(stored[0].expires_at - (time.time() + 3600)) < 120
    plugin.close(10)
