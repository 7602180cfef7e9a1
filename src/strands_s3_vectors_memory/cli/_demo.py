"""The offline demo: five conversations, two users, one agent, and what memory did with them.

Alice has four conversations and Bob one. After each ended conversation the demo shows what was
stored, and the user's facts, current and superseded: Alice lives in Berlin, then tells the agent
she moved to Paris, and the Berlin fact is superseded (kept as history, no longer injected). At the
start of each new conversation it shows what was retrieved and the system prompt the model got.
Without a model flag it uses the scripted model and says so; ``--model`` points it at Bedrock,
Ollama, any OpenAI-compatible server, or a GGUF model run in-process by llama.cpp
(``llamacpp:PATH``, the ``llamacpp`` extra).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from strands import Agent

from ..config import Backend
from ..index import TYPE_FACT, MemoryScope
from ..models import build_model
from ..plugin import S3VectorMemoryPlugin
from ..store import S3VectorMemory

__all__ = [
    "AGENT_NAME", "BASE_PROMPT", "DEMO_BUCKET", "SCRIPT", "Conversation", "run_demo",
]

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

DEMO_BUCKET = "demo-memory"
AGENT_NAME = "assistant"


@dataclass(frozen=True)
class Conversation:
    user_id: str
    conversation_id: str
    turns: Sequence[str]


SCRIPT: tuple[Conversation, ...] = (
    Conversation("alice", "alice-1", (
        "Hi, I'm Alice. I'm vegetarian and allergic to peanuts. I live in Berlin.",
        "I work as a nurse on night shifts, so I cook in big batches on Sundays. Thanks, bye!",
    )),
    Conversation("alice", "alice-2", (
        "I'm planning a trip to Kyoto in April with my partner Sam.",
        "We love temples and quiet tea houses. That's all for now.",
    )),
    Conversation("bob", "bob-1", (
        "Hey, Bob here. I'm training for the Berlin marathon in September.",
        "I eat a lot of peanut butter for energy. Bye!",
    )),
    Conversation("alice", "alice-3", (
        "Big news: I live in Paris now. The flat is tiny but the light is lovely.",
        "Thanks, bye!",
    )),
    Conversation("alice", "alice-4", (
        "Can you suggest a dinner I could cook this Sunday, and a market in the city I live in to shop for it?",
        "Great, thanks!",
    )),
)


def run_demo(
    *,
    model_spec: str | None = None,
    base_url: str | None = None,
    data_dir: Path | None = None,
    backend: str = "local",
    console: Console | None = None,
    store: S3VectorMemory | None = None,
) -> dict[str, Any]:
    """Run the scripted conversations and print what memory did.

    Returns the first prompts of each conversation and ``unstored``: how many ended conversations
    were not stored (their writes failed or were still pending at the end); the CLI then exits 1.
    """
    out = console or Console()
    model, model_line = build_model(model_spec, base_url)
    workdir = data_dir or Path(tempfile.mkdtemp(prefix="s3-vectors-memory-demo-"))
    store = store or S3VectorMemory(bucket_name=DEMO_BUCKET, backend=backend, data_dir=workdir)
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)
    agent = Agent(model=model, name=AGENT_NAME, plugins=[plugin], system_prompt=BASE_PROMPT,
                  callback_handler=None)
    where = f"embedded engine at {workdir}" if store.backend is Backend.LOCAL else f"AWS bucket {DEMO_BUCKET}"
    out.print(Panel.fit(
        f"[bold]strands-s3-vectors-memory demo[/bold]\nMemory: {where}\nEmbeddings: {store.embedder.model_id}"
        f" ({store.embedder.dimension}-d)\nModel: {model_line}",
        border_style="cyan",
    ))
    first_prompts: dict[str, str] = {}
    for conversation in SCRIPT:
        out.rule(f"[bold]{conversation.user_id}[/bold] · conversation {conversation.conversation_id}")
        for number, text in enumerate(conversation.turns, start=1):
            end = number == len(conversation.turns)
            reply = agent(text, invocation_state={
                "user_id": conversation.user_id,
                "conversation_id": conversation.conversation_id,
                "end_session": end,
            })
            if number == 1:
                prompt = plugin.last_system_prompt
                first_prompts[conversation.conversation_id] = prompt
                recalled = "<memories>" in prompt
                out.print(Panel(prompt, title="system prompt on turn 1"
                                + (" (memories retrieved)" if recalled else " (nothing relevant yet)"),
                                border_style="green" if recalled else "dim"))
            out.print(f"[bold blue]{conversation.user_id}:[/bold blue] {text}")
            out.print(f"[bold magenta]assistant:[/bold magenta] {str(reply).strip()}")
        plugin.flush(120)
        _show_stored(out, store, conversation)
    stats = plugin.writer.stats
    unstored = stats.failed + stats.pending
    plugin.close(10)
    if unstored:
        out.print(f"[bold red]{unstored} conversation(s) could not be stored[/bold red] (see the log above)")
    out.print(f"\nData kept in {workdir}" if data_dir else "")
    return {"first_prompts": first_prompts, "data_dir": workdir, "unstored": unstored}


def _show_stored(out: Console, store: S3VectorMemory, conversation: Conversation) -> None:
    scope = MemoryScope(conversation.user_id, AGENT_NAME)
    everything = list(store.iter_memories(scope.user_id, agent_name=AGENT_NAME))
    stored = [m for m in everything if m.conversation_id == conversation.conversation_id and m.type != TYPE_FACT]
    table = Table(title=f"stored for {conversation.user_id} / {conversation.conversation_id}", show_lines=False)
    table.add_column("type")
    table.add_column("content")
    for memory in sorted(stored, key=lambda m: (m.type != "summary", m.key)):
        table.add_row(memory.type, memory.content)
    out.print(table)
    facts = Table(title=f"facts of {conversation.user_id} (current first)", show_lines=False)
    facts.add_column("status")
    facts.add_column("fact")
    facts.add_column("since")
    facts.add_column("until")
    for fact in sorted((m for m in everything if m.type == TYPE_FACT),
                       key=lambda m: (not m.is_current_fact, m.stored_at, m.content)):
        new = " (new)" if fact.conversation_id == conversation.conversation_id and fact.is_current_fact else ""
        facts.add_row(f"{fact.fact_status}{new}", fact.content, fact.stored_at, fact.valid_to or "")
    out.print(facts)
