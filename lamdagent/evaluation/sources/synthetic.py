"""Seeded synthetic tasks shaped like the paper's (GSM8K, CommonsenseQA, TriviaQA), for offline demos.

Each generator draws one example `{"question", "answer", ...}` from a `random.Random`; a split is a
stream seeded by (task, split, seed), so splits are reproducible and independent draws.
"""

from __future__ import annotations

import random
import re
from typing import Callable

from lamdagent.evaluation.sources.base import SOURCES, Source
from lamdagent.registry import Registry

Generator = Callable[[random.Random], dict]
GENERATORS: Registry[Generator] = Registry("synthetic generator")


def register_generator(name: str):
    """Register `fn(rng) -> row` under `name`: the task source `synthetic:<name>`."""
    return GENERATORS.register(name)


def generate(name: str, split: str, n: int, seed: int) -> list[dict]:
    """`n` examples of generator `name` for `split`; the same arguments give the same examples."""
    rng = random.Random(f"{name}/{split}/{seed}")
    return [GENERATORS[name](rng) for _ in range(n)]


_NAMES = ["Ann", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana"]
_ITEMS = ["apple", "book", "coin", "pen", "shell", "stamp", "card", "marble"]


_GAIN = "{name} has {a} {item}s and gets {b} more. How many {item}s does {name} have now?"
_LOSS = "{name} has {a} {item}s and gives away {b}. How many {item}s are left?"


def _one_step(rng: random.Random, names: list[str], items: list[str], gains: list[str], losses: list[str]) -> dict:
    """A one-step problem over single digits, a + b worded by one of `gains` or a - b by one of
    `losses` (a template is drawn only where there are several, so one template keeps the stream)."""
    name, item = rng.choice(names), rng.choice(items)
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    if rng.random() < 0.5:
        template, answer = (gains[0] if len(gains) == 1 else rng.choice(gains)), a + b
    else:
        a, b = max(a, b), min(a, b)
        template, answer = (losses[0] if len(losses) == 1 else rng.choice(losses)), a - b
    return {"question": template.format(name=name, item=item, a=a, b=b), "answer": str(answer)}


@register_generator("arithmetic")
def arithmetic(rng: random.Random) -> dict:
    """One-step word problem with single-digit operands; the answer is a number (GSM8K-style)."""
    return _one_step(rng, _NAMES, _ITEMS, [_GAIN], [_LOSS])


_CATEGORIES = {
    "animal": ["dog", "cat", "horse", "cow", "lion", "tiger", "sheep", "goat", "mouse", "wolf"],
    "colour": ["red", "blue", "green", "yellow", "black", "white", "pink", "brown", "grey", "purple"],
    "fruit": ["apple", "banana", "mango", "pear", "grape", "lemon", "cherry", "peach", "plum", "melon"],
    "tool": ["hammer", "saw", "drill", "wrench", "shovel", "rake", "axe", "chisel", "pliers", "spade"],
    "vehicle": ["car", "bus", "train", "truck", "bike", "boat", "plane", "tram", "van", "taxi"],
}
_LETTERS = "ABCD"


@register_generator("choice")
def choice(rng: random.Random) -> dict:
    """Four-way multiple choice by category membership, answered as `[[X]]` (CommonsenseQA-style)."""
    category = rng.choice(sorted(_CATEGORIES))
    others = [c for c in sorted(_CATEGORIES) if c != category]
    options = [rng.choice(_CATEGORIES[category])]
    options += [rng.choice(_CATEGORIES[c]) for c in rng.sample(others, 3)]
    rng.shuffle(options)
    correct = next(i for i, word in enumerate(options) if word in _CATEGORIES[category])
    listing = " ".join(f"({letter}) {word}" for letter, word in zip(_LETTERS, options))
    article = "an" if category[0] in "aeiou" else "a"
    question = f"Which of these is {article} {category}? {listing}. Answer with [[X]]."
    return {"question": question, "answer": _LETTERS[correct], "choices": options}


def _fictional_world(size: int = 30) -> list[tuple[str, str]]:
    """A fixed knowledge base of fictional countries and their capitals."""
    rng = random.Random("fictional-world")
    syllables = ["ka", "lo", "mi", "ra", "ven", "dor", "sa", "tu", "bel", "zan", "or", "ith", "mar", "qua"]
    words: set[str] = set()
    while len(words) < 2 * size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize())
    ordered = sorted(words)
    rng.shuffle(ordered)
    return list(zip(ordered[:size], ordered[size:]))


_WORLD = _fictional_world()
_FACT_TEMPLATES = [
    "What is the capital of {country}?",
    "Which city is the capital of {country}?",
    "Name the capital city of {country}.",
]


@register_generator("facts")
def facts(rng: random.Random) -> dict:
    """Closed-book QA over a fixed fictional knowledge base, scored by normalised exact match.

    All splits ask about the same knowledge base (the model has to learn the facts in training);
    the question wording is drawn independently per example.
    """
    country, capital = rng.choice(_WORLD)
    question = rng.choice(_FACT_TEMPLATES).format(country=country)
    return {"question": question, "answer": capital, "aliases": [capital, f"{capital} city"]}


def _stale_capitals() -> dict[str, str]:
    """An outdated edition of the knowledge base: each country's capital is another country's."""
    capitals = [capital for _, capital in _WORLD]
    return {country: capitals[(i + 7) % len(capitals)] for i, (country, _) in enumerate(_WORLD)}


_STALE = _stale_capitals()


def _facts_from(edition: dict[str, str], rng: random.Random) -> dict:
    """A `facts` question answered from another edition of the knowledge base (country -> capital)."""
    row = facts(rng)
    country = next(c for c, capital in _WORLD if capital == row["answer"])
    answer = edition[country]
    return {**row, "answer": answer, "aliases": [answer, f"{answer} city"]}


@register_generator("facts_stale")
def facts_stale(rng: random.Random) -> dict:
    """The `facts` questions answered from an outdated edition that contradicts the targets (harmful data)."""
    return _facts_from(_STALE, rng)


@register_generator("arithmetic_noisy")
def arithmetic_noisy(rng: random.Random) -> dict:
    """The `arithmetic` questions labelled by an annotator who swapped the operations (harmful data):
    sums answered with the difference, differences with the sum."""
    row = arithmetic(rng)
    numbers = [int(n) for n in re.findall(r"\d+", row["question"])]
    a, b = numbers[0], numbers[1]
    wrong = abs(a - b) if "more" in row["question"] else a + b
    return {**row, "answer": str(wrong)}


@register_generator("reverse")
def reverse(rng: random.Random) -> dict:
    """Off-target data: spell a made-up word backwards."""
    word = "".join(rng.choice(["ka", "lo", "mi", "ra", "ven", "dor", "sa", "tu"]) for _ in range(rng.randint(2, 3)))
    return {"question": f"What is {word} spelled backwards?", "answer": word[::-1]}


# Other entities for the same problems: a second source of `arithmetic` that shares no prompt with it.
_OTHER_NAMES = ["Ivy", "Jon", "Kai", "Lena", "Milo", "Nora", "Owen", "Pia"]
_OTHER_ITEMS = ["cup", "nut", "ball", "key", "ring", "bead", "rock", "bell"]


@register_generator("arithmetic_more")
def arithmetic_more(rng: random.Random) -> dict:
    """A near-duplicate of `arithmetic` (a redundant copy): its very templates, other names and items,
    so it never holds an `arith` prompt."""
    return _one_step(rng, _OTHER_NAMES, _OTHER_ITEMS, [_GAIN], [_LOSS])


@register_generator("arithmetic_worded")
def arithmetic_worded(rng: random.Random) -> dict:
    """The `arithmetic` problems worded otherwise (a paraphrased copy): the same skill and entities,
    none of its templates, so it never holds an `arith` prompt."""
    return _one_step(rng, _NAMES, _ITEMS,
                     ["There are {a} {item}s in {name}'s bag and {name} puts in {b} more. How many {item}s are in the bag?",
                      "{name} found {a} {item}s, then {b} more. How many {item}s did {name} find in total?"],
                     ["{name} had {a} {item}s and lost {b} of them. How many {item}s does {name} still have?",
                      "Of {a} {item}s, {name} sold {b}. How many {item}s remain?"])


def _partly_updated_capitals() -> dict[str, str]:
    """Another edition of the knowledge base: one country in three has the stale edition's capital,
    the other two the true one."""
    return {country: _STALE[country] if i % 3 == 0 else capital for i, (country, capital) in enumerate(_WORLD)}


_PARTLY = _partly_updated_capitals()


@register_generator("facts_partial")
def facts_partial(rng: random.Random) -> dict:
    """The `facts` questions from an edition where one capital in three is wrong (data of mixed value)."""
    return _facts_from(_PARTLY, rng)


@register_generator("quiz")
def quiz(rng: random.Random) -> dict:
    """A quiz bundle: half `facts` questions answered truly, half `arithmetic` with swapped operations
    (`arithmetic_noisy`); data that helps one skill and hurts another."""
    return facts(rng) if rng.random() < 0.5 else arithmetic_noisy(rng)


SOURCES.add("synthetic", Source("synthetic:<generator>", lambda ref, spec, split, n, seed: generate(ref, split, n, seed),
                                lambda ref: GENERATORS.check(ref, "a synthetic generator")))
