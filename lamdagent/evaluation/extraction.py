"""Answer extraction as lm-evaluation-harness's filters: the `regex` extractor, and a task's
extractor as a list of steps run in order (lm-eval's `filter` list), checked when the task loads.

A task names one registered extractor (`extractor: regex` with `extractor_args`) or lists steps,
each a registered extractor with its options or a selection, in lm-eval's own words:

    extractor:
      - function: regex
        regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)"
        group_select: -1
      - function: take_first

The steps map a document's generations (one greedy generation here: lm-eval's `repeats: 1`) one by
one; `take_first` / `take_last` keep the first / last of them. lm-eval's GSM8K filters
`strict-match` and `flexible-extract` are such lists (`strict_match`, `flexible_extract` below).
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Callable

import yaml

from lamdagent.errors import UserError
from lamdagent.evaluation.metrics import EXTRACTORS, register_extractor

INVALID = "[invalid]"  # lm-eval RegexFilter's fallback
FLAGS = {"ignorecase": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL, "verbose": re.VERBOSE, "ascii": re.ASCII}
SELECTIONS: dict[str, Callable[[list[str]], list[str]]] = {"take_first": lambda answers: answers[:1],
                                                            "take_last": lambda answers: answers[-1:]}


def _flag_names(flags: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return (flags,) if isinstance(flags, str) else tuple(flags)


@functools.lru_cache(maxsize=256)
def compiled(regex_pattern: str, flags: tuple[str, ...] = ()) -> re.Pattern:
    """The pattern compiled with the named flags; a one-line UserError for a bad pattern or flag."""
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise UserError(f"flag {unknown[0]!r} is not one of {sorted(FLAGS)}")
    try:
        return re.compile(regex_pattern, functools.reduce(lambda a, b: a | b, (FLAGS[f] for f in flags), 0))
    except (re.error, TypeError) as err:
        raise UserError(f"regex_pattern {regex_pattern!r} is not a regular expression: {err}") from None


def check_regex(regex_pattern: str, group_select: int = 0, group: int | str | None = None, flags: str | list[str] = (),
                fallback: str = INVALID) -> None:
    """The `regex` extractor's options, checked before any compute (one-line UserError naming the value)."""
    if not isinstance(regex_pattern, str):
        raise UserError(f"regex_pattern must be a string, got {regex_pattern!r}")
    if not isinstance(flags, (str, list, tuple)) or not all(isinstance(f, str) for f in _flag_names(flags)):
        raise UserError(f"flags must be a list of {sorted(FLAGS)}, got {flags!r}")
    pattern = compiled(regex_pattern, _flag_names(flags))
    if not isinstance(group_select, int) or isinstance(group_select, bool):
        raise UserError(f"group_select must be an integer (which match: 0 the first, -1 the last), got {group_select!r}")
    if group is not None and not (isinstance(group, str) and group in pattern.groupindex
                                  or isinstance(group, int) and not isinstance(group, bool) and 0 <= group <= pattern.groups):
        raise UserError(f"group {group!r} is not a group of regex_pattern {regex_pattern!r} "
                        f"(0 to {pattern.groups}{', ' + ', '.join(map(repr, pattern.groupindex)) if pattern.groupindex else ''})")
    if not isinstance(fallback, str):
        raise UserError(f"fallback must be a string, got {fallback!r}")


@register_extractor("regex")
def regex(text: str, regex_pattern: str, group_select: int = 0, group: int | str | None = None, flags: str | list[str] = (),
          fallback: str = INVALID) -> str:
    """lm-eval's `regex` filter on one generation: match number `group_select` of `regex_pattern`
    (0 the first, -1 the last), stripped; of that match, capture `group` if given, else as lm-eval
    (`findall`): the whole match without groups, the group with one, the first non-empty with several.
    `flags`: ignorecase, multiline, dotall, verbose, ascii. No such match: `fallback`."""
    pattern = compiled(regex_pattern, _flag_names(flags))
    if group is None:
        matches = pattern.findall(text)
    else:
        matches = [m.group(group) or "" for m in pattern.finditer(text)]
    if not -len(matches) <= group_select < len(matches):
        return fallback
    match = matches[group_select]
    if isinstance(match, tuple):
        match = next((m for m in match if m), fallback)
    return match.strip()


regex.check = check_regex  # an extractor's optional `check(**options)`: called when a task loads


class Extraction:
    """A task's extractor, built and checked before any compute: `extractor` is a registered name
    (with `options`, its keyword arguments) or a list of steps, each a name or a mapping
    `{function: NAME, OPTION: VALUE, ...}` (lm-eval's filter list). Called on a generation, it gives
    the answer: the first one left after the last step."""

    def __init__(self, extractor: str | list, options: dict | None = None):
        options = dict(options or {})
        if isinstance(extractor, str):
            self.steps = [self._step(extractor, options)]
            return
        if not isinstance(extractor, (list, tuple)) or not extractor:
            raise UserError(f"extractor must be a registered name or a list of steps, got {extractor!r}")
        if options:
            raise UserError(f"extractor_args {options!r} apply to a named extractor; a list gives each step's options in the step")
        self.steps = []
        for step in extractor:
            if isinstance(step, str):
                self.steps.append(self._step(step, {}))
            elif isinstance(step, dict) and isinstance(step.get("function"), str):
                self.steps.append(self._step(step["function"], {k: v for k, v in step.items() if k != "function"}))
            else:
                raise UserError(f"extractor step {step!r} is not a name or a mapping with `function: NAME`")

    @staticmethod
    def _step(name: str, options: dict) -> Callable[[list[str]], list[str]]:
        if name in SELECTIONS:
            if options:
                raise UserError(f"extractor step {name!r} takes no options, got {sorted(options)}")
            return SELECTIONS[name]
        if name not in EXTRACTORS:
            raise UserError(f"unknown extractor {name!r}; expected one of {EXTRACTORS.names()} (in a list also {sorted(SELECTIONS)})")
        extractor = EXTRACTORS[name]
        parameters = list(inspect.signature(extractor).parameters.values())[1:]
        accepted = [p.name for p in parameters]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UserError(f"extractor {name!r} has no option {unknown[0]!r}; it takes {accepted}")
        missing = [p.name for p in parameters if p.default is inspect.Parameter.empty and p.name not in options]
        if missing:
            raise UserError(f"extractor {name!r} needs the option {missing[0]!r}")
        check = getattr(extractor, "check", None)
        if check is not None:
            try:
                check(**options)
            except UserError as err:
                raise UserError(f"extractor {name!r}: {err}") from None
        return lambda answers: [extractor(answer, **options) for answer in answers]

    def __call__(self, generation: str) -> str:
        answers = [generation]
        for step in self.steps:
            answers = step(answers)
        return answers[0] if answers else ""


# lm-evaluation-harness 0.4.13's lm_eval/tasks/gsm8k/gsm8k.yaml `filter_list`, verbatim
LM_EVAL_GSM8K_FILTERS = {entry["name"]: entry["filter"] for entry in yaml.safe_load(r"""
  - name: "strict-match"
    filter:
      - function: "regex"
        regex_pattern: "#### (\\-?[0-9\\.\\,]+)"
      - function: "take_first"
  - name: "flexible-extract"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)"
      - function: "take_first"
""")}

# `strict-match`: the number after `#### `; `flexible-extract`: the last number-like run of the text
strict_match = EXTRACTORS.register("strict_match")(Extraction(LM_EVAL_GSM8K_FILTERS["strict-match"]))
flexible_extract = EXTRACTORS.register("flexible_extract")(Extraction(LM_EVAL_GSM8K_FILTERS["flexible-extract"]))
