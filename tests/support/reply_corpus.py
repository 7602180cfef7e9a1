"""Summary replies written the way real model families format them, each with what it should yield.

Written by hand from how Claude, Nova, Llama, Mistral, GPT, Qwen/DeepSeek and Gemini models commonly
answer a "summary, then a FACTS: section" request: bold or markdown headers, a preamble and a closing
"Let me know...", numbered ``FACT 1:`` labels, ``#1`` and "1 and 2", ``SUPERSEDES`` with the old fact
in parentheses or on the fact's own line, code fences, JSON, a reasoning block, another language,
replies that say nothing new, retract a fact, supersede two, or echo the request. Each entry lists
the facts (and the numbers of the shown facts each supersedes) and the retractions a careful reader
takes from it: ``tests/test_reply_corpus.py`` holds the parser to >= 95 % of them kept and none invented.
"""

from __future__ import annotations

from dataclasses import dataclass

HOME = ("Lives in Berlin", "Works as a teacher", "Is vegetarian")
PETS = ("Has a dog named Max", "Drives a Volvo", "Plays tennis on Sundays")


@dataclass(frozen=True)
class CorpusReply:
    """One reply: its family, the facts shown to the model, and what the reply says."""

    family: str
    reply: str
    facts: tuple[tuple[str, tuple[int, ...]], ...] = ()
    retracted: tuple[int, ...] = ()
    shown: tuple[str, ...] = HOME
    #: The summary starts with this (its header, a preamble and the facts are not part of it).
    summary: str = "The user"


def _r(family: str, reply: str, *facts: tuple[str, tuple[int, ...]] | str, retracted: tuple[int, ...] = (),
       shown: tuple[str, ...] = HOME, summary: str = "The user") -> CorpusReply:
    listed = tuple((fact, ()) if isinstance(fact, str) else fact for fact in facts)
    return CorpusReply(family, reply, listed, retracted, shown, summary)


CORPUS: tuple[CorpusReply, ...] = (
    # --- Claude: a preamble, bold headers, SUPERSEDES with the old fact in parentheses, a closing remark
    _r("claude", """Here's a summary of the conversation:

The user explained that they moved from Berlin to Lisbon in March and now work remotely.

**FACTS:**
- FACT: Lives in Lisbon (moved from Berlin in March 2026)
  SUPERSEDES: 1 (Lives in Berlin)
- FACT: Works remotely

Let me know if you'd like me to adjust anything.""",
       ("Lives in Lisbon (moved from Berlin in March 2026)", (1,)), "Works remotely"),
    _r("claude", """The user asked for vegetarian recipes for a dinner party on Saturday.

FACTS: none""", summary="The user asked"),
    _r("claude", """**Summary**
The user said they no longer teach; they are taking a year off to travel.

**FACTS:**
SUPERSEDES: 2 (Works as a teacher)
- FACT: Is taking a year off to travel (from May 2026)

I've only included facts the user stated directly.""",
       "Is taking a year off to travel (from May 2026)", retracted=(2,)),
    _r("claude", """I'll summarize the conversation and extract the facts.

The user talked about their new job as a nurse in Hamburg, which means they moved from Berlin.

FACTS:
FACT: Works as a nurse
SUPERSEDES: 2
FACT: Lives in Hamburg
SUPERSEDES: 1""", ("Works as a nurse", (2,)), ("Lives in Hamburg", (1,))),
    _r("claude", """The user mentioned they started eating fish again and moved to Munich.

**FACTS:**
- **FACT:** Eats fish again (no longer vegetarian)
  **SUPERSEDES:** 3
- **FACT:** Lives in Munich
  **SUPERSEDES:** 1""", ("Eats fish again (no longer vegetarian)", (3,)), ("Lives in Munich", (1,))),
    _r("claude", """The user planned a trip to Japan.

FACTS:
- FACT: Is planning a trip to Japan in October 2026
- FACT: Is allergic to shellfish

Is there anything else you'd like me to capture?""",
       "Is planning a trip to Japan in October 2026", "Is allergic to shellfish"),
    _r("claude", """The user sold their car and now cycles to work; they also gave up tennis after a knee injury.

**FACTS:**
- FACT: Cycles to work (sold the Volvo)
  SUPERSEDES: 2 (Drives a Volvo)
- FACT: Had a knee injury in 2026
SUPERSEDES: 3 (Plays tennis on Sundays)""",
       ("Cycles to work (sold the Volvo)", (2,)), ("Had a knee injury in 2026", (3,)), shown=PETS),
    _r("claude", """The user told me about their sister's wedding.

FACTS:
- FACT: Has a sister named Clara
- FACT: Attends Clara's wedding on June 14, 2026
Note: I did not include the assistant's suggestions.""",
       "Has a sister named Clara", "Attends Clara's wedding on June 14, 2026"),
    _r("claude", """Sure! Here is the summary and the facts:

The user adopted a second dog and named it Luna.

FACTS:
- FACT: Has a second dog named Luna""", "Has a second dog named Luna", shown=PETS),
    _r("claude", """The user corrected an earlier statement: they never owned a Volvo; it was their father's car.

**FACTS:**
SUPERSEDES: 2 (Drives a Volvo)

Let me know if you need anything else!""", retracted=(2,), shown=PETS),

    # --- Nova: "**Summary:**" on the line, numbered facts, "(supersedes #1)"
    _r("nova", """**Summary:** The user moved to Vienna for a new job at a hospital.

**Facts:**
1. Lives in Vienna (supersedes #1)
2. Works at a hospital in Vienna (supersedes #2)""",
       ("Lives in Vienna", (1,)), ("Works at a hospital in Vienna", (2,))),
    _r("nova", """**Summary:** The user asked about train times to Leipzig.

**Facts:** None""", summary="The user asked"),
    _r("nova", """**Summary:**
The user shared that they are learning Portuguese.

**Facts:**
1. Is learning Portuguese
2. Takes Portuguese classes on Tuesday evenings""",
       "Is learning Portuguese", "Takes Portuguese classes on Tuesday evenings"),
    _r("nova", """**Summary:** The user now eats meat occasionally and has a new partner named Sam.

**Facts:**
1. Eats meat occasionally (supersedes #3)
2. Has a partner named Sam""", ("Eats meat occasionally", (3,)), "Has a partner named Sam"),
    _r("nova", """**Summary:** The user's dog Max passed away last week; they are considering adopting a cat.

**Facts:**
1. Is considering adopting a cat
**No longer true:** #1""", "Is considering adopting a cat", retracted=(1,), shown=PETS),
    _r("nova", """**Summary:** The user described a move and a new car.

**Facts:**
1. Lives in Graz (supersedes fact 1)
2. Drives an electric Fiat 500""", ("Lives in Graz", (1,)), "Drives an electric Fiat 500"),
    _r("nova", """**Summary:** The user only greeted the assistant and asked about the weather.

**Facts:** No new facts.""", summary="The user only"),
    _r("nova", """**Summary:** The user switched from tennis to padel and bought a Tesla.

**Facts:**
1. Plays padel on Sundays (supersedes #3)
2. Drives a Tesla Model 3 (supersedes #2)""",
       ("Plays padel on Sundays", (3,)), ("Drives a Tesla Model 3", (2,)), shown=PETS),
    _r("nova", """**Summary:** The user is training for a marathon in Berlin.

**Facts:**
1. Is training for the Berlin Marathon in September 2026
2. Runs 40 km per week""", "Is training for the Berlin Marathon in September 2026", "Runs 40 km per week"),

    # --- Llama: "Here is the summary:", FACT 1: labels, "SUPERSEDES: 1 and 2", echoes
    _r("llama", """Here is the summary:

The user moved to Paris and now works as a translator.

FACTS:
FACT 1: Lives in Paris
SUPERSEDES: 1
FACT 2: Works as a translator
SUPERSEDES: 2""", ("Lives in Paris", (1,)), ("Works as a translator", (2,))),
    _r("llama", """Here is the summary:

The user left teaching and moved to Dresden to work as a baker.

FACTS:
FACT 1: Works as a baker in Dresden
SUPERSEDES: 1 and 2""", ("Works as a baker in Dresden", (1, 2))),
    _r("llama", """The user discussed their weekend plans.

FACTS: None""", summary="The user discussed"),
    _r("llama", """<current_facts>
1. Lives in Berlin
2. Works as a teacher
3. Is vegetarian
</current_facts>
The user said they adopted a cat called Miso.

FACTS:
FACT: Has a cat named Miso""", "Has a cat named Miso", summary="The user said"),
    _r("llama", """Summary: The user is vegan now, not just vegetarian.

FACTS:
FACT #1: Is vegan (since January 2026)
SUPERSEDES: #3""", ("Is vegan (since January 2026)", (3,))),
    _r("llama", """Here is the summary of the conversation:

The user started a PhD in chemistry.

FACTS:
FACT 1: Is doing a PhD in chemistry at TU Dresden
FACT 2: Lives in Dresden
SUPERSEDES: 1 (Lives in Berlin)""",
       "Is doing a PhD in chemistry at TU Dresden", ("Lives in Dresden", (1,))),
    _r("llama", """The user talked about their garden.

FACTS:
FACT 1: Grows tomatoes on the balcony
FACT 2: Lives in Berlin""", "Grows tomatoes on the balcony"),  # a current fact said again is nothing new
    _r("llama", """Here is a summary of the conversation:

The user mentioned they have two kids and play chess.

FACTS:
FACT 1: Has two children
FACT 2: Plays chess online
I hope this helps!""", "Has two children", "Plays chess online"),
    _r("llama", """The user said they sold the Volvo and gave their dog to their parents.

FACTS:
SUPERSEDES: 1, 2""", retracted=(1, 2), shown=PETS),
    _r("llama", """Summary:
The user moved back to Berlin after a year in Madrid.

FACTS:
FACT 1: Lives in Berlin again (since 2026)
FACT 2: Speaks Spanish""", "Lives in Berlin again (since 2026)", "Speaks Spanish"),

    # --- Mistral: markdown headings, "* **FACT:**", "— SUPERSEDES: #1", "No new facts."
    _r("mistral", """## Summary
The user changed jobs and is now a software developer.

## Facts
* **FACT:** Works as a software developer — SUPERSEDES: #2""", ("Works as a software developer", (2,))),
    _r("mistral", """## Summary
The user asked for book recommendations.

## Facts
No new facts.""", summary="The user asked"),
    _r("mistral", """### Summary
The user moved to Zurich and plays the cello.

### Facts
* **FACT:** Lives in Zurich — SUPERSEDES: #1
* **FACT:** Plays the cello""", ("Lives in Zurich", (1,)), "Plays the cello"),
    _r("mistral", """**Summary**

The user is no longer vegetarian and eats chicken.

**Facts**
* FACT: Eats chicken (replaces 3)""", ("Eats chicken", (3,))),
    _r("mistral", """## Summary
The user said their dog is called Rex, not Max.

## Facts
* **FACT:** Has a dog named Rex — SUPERSEDES: #1 (Has a dog named Max)""",
       ("Has a dog named Rex", (1,)), shown=PETS),
    _r("mistral", """## Résumé
L'utilisateur a déménagé à Lyon et travaille comme infirmier.

## Faits
* **FAIT :** Habite à Lyon — REMPLACE : #1
* **FAIT :** Travaille comme infirmier — REMPLACE : #2""",
       ("Habite à Lyon", (1,)), ("Travaille comme infirmier", (2,)), summary="L'utilisateur"),
    _r("mistral", """## Summary
The user is training a puppy.

## Facts
* **FACT:** Has a puppy named Bruno
* **FACT:** Takes the puppy to training on Saturdays""",
       "Has a puppy named Bruno", "Takes the puppy to training on Saturdays", shown=PETS),
    _r("mistral", """## Summary
The user mentioned their new address and their allergy.

## Facts
* **FACT:** Lives in Potsdam — SUPERSEDES: #1
* **FACT:** Is allergic to peanuts
* This is all the user shared.""", ("Lives in Potsdam", (1,)), "Is allergic to peanuts"),
    _r("mistral", """## Summary
The user stopped playing tennis.

## Facts
* **SUPERSEDES:** #3""", retracted=(3,), shown=PETS),

    # --- GPT: code fences, nested "- SUPERSEDES:", JSON objects, numbered "FACT 1 -"
    _r("gpt", """```
The user moved to Copenhagen and works as an architect.

FACTS:
- FACT: Lives in Copenhagen
  - SUPERSEDES: 1
- FACT: Works as an architect
  - SUPERSEDES: 2
```""", ("Lives in Copenhagen", (1,)), ("Works as an architect", (2,))),
    _r("gpt", """```json
{
  "summary": "The user moved to Oslo and became a pescatarian.",
  "facts": [
    {"text": "Lives in Oslo", "supersedes": [1]},
    {"text": "Is pescatarian", "supersedes": [3]}
  ]
}
```""", ("Lives in Oslo", (1,)), ("Is pescatarian", (3,))),
    _r("gpt", """{"summary": "The user asked how to cook lentils.", "facts": []}""", summary="The user asked"),
    _r("gpt", """The user described their new hobby, bouldering.

FACTS:
- FACT: Goes bouldering twice a week
- FACT: Is a member of a climbing gym in Kreuzberg""",
       "Goes bouldering twice a week", "Is a member of a climbing gym in Kreuzberg"),
    _r("gpt", """The user got married and moved in with their wife in Bonn.

FACTS:
1. FACT: Is married (since May 2026)
2. FACT: Lives in Bonn
   SUPERSEDES: 1""", "Is married (since May 2026)", ("Lives in Bonn", (1,))),
    _r("gpt", """```json
{"summary": "The user no longer has the dog and moved.", "facts": [{"text": "Lives in Kiel", "supersedes": []}],
 "retracted": [1]}
```""", "Lives in Kiel", retracted=(1,), shown=PETS),
    _r("gpt", """**Summary**
The user switched to a plant-based diet and started teaching yoga instead of school.

**FACTS:**
- FACT: Is vegan
  - SUPERSEDES: 3
- FACT: Teaches yoga
  - SUPERSEDES: 2""", ("Is vegan", (3,)), ("Teaches yoga", (2,))),
    _r("gpt", """The user said they live in Berlin and still teach.

FACTS: none""", summary="The user said"),
    _r("gpt", """{
  "summary": "The user mentioned a new bike.",
  "facts": ["Rides a cargo bike (bought in April 2026)"]
}""", "Rides a cargo bike (bought in April 2026)", summary="The user mentioned"),
    _r("gpt", """The user sold the Volvo and now drives a BMW; they also stopped playing tennis.

FACTS:
- FACT: Drives a BMW (SUPERSEDES: 2)
SUPERSEDES: 3""", ("Drives a BMW", (2, 3)), shown=PETS),

    # --- Qwen / DeepSeek: a reasoning block first, "Supersedes:" mixed case, another language
    _r("qwen", """<think>
The user moved. Fact 1 is Berlin, so it is superseded.
</think>
The user moved to Leipzig.

FACTS:
FACT: Lives in Leipzig
Supersedes: 1""", ("Lives in Leipzig", (1,))),
    _r("qwen", """<think>Nothing new about the user here.</think>
The user asked about the opening hours of a museum.

FACTS: none""", summary="The user asked"),
    _r("qwen", """El usuario se mudó a Madrid y ahora trabaja como diseñador.

HECHOS:
HECHO: Vive en Madrid
REEMPLAZA: 1
HECHO: Trabaja como diseñador
REEMPLAZA: 2""", ("Vive en Madrid", (1,)), ("Trabaja como diseñador", (2,)), summary="El usuario"),
    _r("qwen", """Der Nutzer ist nach Köln gezogen.

FAKTEN:
FAKT: Wohnt in Köln
ERSETZT: 1""", ("Wohnt in Köln", (1,)), summary="Der Nutzer"),
    _r("qwen", """<think>
The user changed job and diet.
</think>

**Summary:** The user became a chef and stopped being vegetarian.

**FACTS:**
- FACT: Works as a chef (supersedes 2)
- FACT: Eats meat (supersedes 3)""", ("Works as a chef", (2,)), ("Eats meat", (3,))),
    _r("qwen", """The user has a new cat and gave away the dog.

FACTS:
SUPERSEDES: 1
FACT: Has a cat named Tofu""", "Has a cat named Tofu", retracted=(1,), shown=PETS),
    _r("qwen", """The user said Max is now 10 years old and they got a second car.

FACTS:
FACT: Max is 10 years old
FACT: Has a second car, a Renault Zoe""", "Max is 10 years old", "Has a second car, a Renault Zoe", shown=PETS),
    _r("qwen", """The user moved to Bremen.

FACTS:
FACT: Lives in Bremen
SUPERSEDES: 7""", "Lives in Bremen"),  # 7 names no shown fact: dropped, never guessed

    # --- Gemini: "Key facts:" headers, bullets without labels, "(Updated: replaces fact 1)"
    _r("gemini", """**Conversation Summary:**
The user moved to Prague to study music.

**Key Facts:**
* Lives in Prague (replaces fact 1)
* Studies music at the conservatory""", ("Lives in Prague", (1,)), "Studies music at the conservatory"),
    _r("gemini", """**Summary of the conversation:**
The user asked for help writing an email.

**Facts:**
* None""", summary="The user asked"),
    _r("gemini", """The user said they are now a school principal and eat fish.

**Durable facts about the user:**
* Works as a school principal — supersedes fact 2
* Eats fish — supersedes fact 3""", ("Works as a school principal", (2,)), ("Eats fish", (3,))),
    _r("gemini", """The user mentioned a new hobby and a trip.

**Facts:**
* Does pottery on Thursdays
* Visits Lisbon in July 2026

I hope this summary is helpful!""", "Does pottery on Thursdays", "Visits Lisbon in July 2026"),
    _r("gemini", """Summary: The user now owns two dogs and a Volvo XC40.

Facts:
* Has two dogs, Max and Bella
* Drives a Volvo XC40 (replaces 2)""", "Has two dogs, Max and Bella", ("Drives a Volvo XC40", (2,)), shown=PETS),
    _r("gemini", """**Summary:** The user moved from Berlin to Hamburg and changed careers.

**Facts:**
* Lives in Hamburg (supersedes 1)
* Works as a journalist (supersedes 2)
* Is vegetarian""", ("Lives in Hamburg", (1,)), ("Works as a journalist", (2,))),
    _r("gemini", """**Summary:** The user shared their favourite band and that they play bass.

**New facts:**
* Favourite band is Radiohead
* Plays bass guitar in a band""", "Favourite band is Radiohead", "Plays bass guitar in a band"),
)
