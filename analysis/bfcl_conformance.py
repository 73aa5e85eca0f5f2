"""Conformance of `function_calls` + `function_call_match` with BFCL's own AST checker.

Candidates are generated from BFCL's ground truth for every entry of simple_python, multiple and
parallel: correct answers in each output format (Python calls on one line or several, BFCL's JSON
format, JSON tool calls with "arguments" as an object or a JSON string, with "parameters", wrapped as
OpenAI tool calls), and perturbations of each kind BFCL's rules decide (int/float swaps, strings
varied in case, punctuation and spacing, missing required and optional arguments, extra arguments,
a wrong function, parallel calls reordered, dict and list arguments, wrong values, ...), and random
edits of correct answers (characters and tokens inserted or deleted, Python expressions of every
kind BFCL's decoder reads given as argument values), whose verdicts nothing decides beforehand. Each is
scored by our extractor and metric and by bfcl-eval's real checker, in a separate virtual environment
where bfcl-eval is installed with its dependencies:

    python3 -m venv /tmp/bfcl-venv && /tmp/bfcl-venv/bin/pip install bfcl-eval==2026.3.23 soundfile
    PYTHONPATH=. /tmp/bfcl-venv/bin/python analysis/bfcl_conformance.py [--show 40] [--json out.json]
        [--random-edits 5]

The reference for a candidate is what BFCL does with a model output in that format: the decoder of
the format (`default_decode_ast_prompting` for Python and for BFCL's JSON format; for JSON tool calls
the function-calling handlers' `decode_ast`: Qwen's for `{"name", "arguments": {...}}`, OpenAI's for
arguments as a JSON string, also used for `"parameters"`; the tool calls read from the generation's
JSON, its ends stripped of backticks, newlines and spaces as BFCL's prompting decoder strips them,
which is the part a serving stack's tool-call parser plays), then `is_function_calling_format_output`,
then the public `ast_checker` (Python, the entry's category, a model that keeps dots in function
names): what bfcl-eval's private `_evaluate_single_ast_entry` does around `ast_checker`.

The candidate generator (`candidates`) needs neither bfcl-eval's dependencies nor the venv; the
test suite uses it (tests/evaluation/test_bfcl_conformance.py) with the verdicts the rules give
(`Candidate.expected`, None where the rules alone do not decide).
"""

from __future__ import annotations

import argparse
import copy
import json
import keyword
import random
import re
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass

from lamdagent.evaluation.function_calls import bfcl_rows, function_call_match, function_calls

CATEGORIES = ("simple_python", "multiple", "parallel")
# Output formats and how each is written; the JSON ones differ only in their keys.
RENDERINGS = ("python", "python_multiline", "json_bfcl", "json_name_arguments", "json_arguments_string",
              "json_name_parameters", "json_openai_tool_calls")
PYTHON_RENDERINGS = ("python", "python_multiline")
# `ast_checker` converts dotted function names to underscores for models whose API forbids dots;
# this one (a local model served with its own tool-call parser) keeps them, as our models do.
MODEL_NAME = "Qwen_Qwen3-8B-FC"
_PUNCTUATION = re.compile(r"[ \,\.\/\-\_\*\^]")


def standardize(text: str) -> str:
    """BFCL's string standardisation, stated here again so the expected verdicts are the rule's."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    category: str
    kind: str
    rendering: str
    text: str
    expected: bool | None  # the verdict BFCL's rules give, None where they alone do not decide


class Code(str):
    """A value written into Python calls as this code (an expression, a bare name)."""

    def __repr__(self) -> str:
        return str(self)


class Tup(list):
    """A list written as a Python tuple."""

    def __repr__(self) -> str:
        return "(" + ", ".join(map(repr, self)) + ("," if len(self) == 1 else "") + ")"


def _plain(value):
    """The value as JSON can hold it (Code and Tup as their plain values)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Code) else value


def render(calls: list[dict], rendering: str) -> str:
    """Calls `[{"name", "arguments"}]` as a model would write them in one output format."""
    if rendering == "python":
        return "[" + ", ".join(f"{c['name']}(" + ", ".join(f"{k}={v!r}" for k, v in c["arguments"].items()) + ")" for c in calls) + "]"
    if rendering == "python_multiline":
        body = ",\n".join(
            f"    {c['name']}(\n" + ",\n".join(f"        {k}={v!r}" for k, v in c["arguments"].items()) + "\n    )" for c in calls
        )
        return "[\n" + body + "\n]"
    calls = [{"name": c["name"], "arguments": _plain(c["arguments"])} for c in calls]
    if rendering == "json_bfcl":
        items = [{"function": c["name"], "parameters": c["arguments"]} for c in calls]
    elif rendering == "json_name_arguments":
        items = calls
    elif rendering == "json_arguments_string":
        items = [{"name": c["name"], "arguments": json.dumps(c["arguments"])} for c in calls]
    elif rendering == "json_name_parameters":
        items = [{"name": c["name"], "parameters": c["arguments"]} for c in calls]
    elif rendering == "json_openai_tool_calls":
        items = [{"type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}} for c in calls]
    else:
        raise ValueError(rendering)
    return json.dumps(items, indent=2 if len(calls) > 1 else None)


def _first(values: list):
    return next((v for v in values if v != ""), "")


def _numeric(values) -> bool:
    return all(type(v) in (int, float) for v in values if v != "")


def _has_list_of_dicts(value) -> bool:
    if isinstance(value, list):
        return any(isinstance(v, dict) or _has_list_of_dicts(v) for v in value)
    if isinstance(value, dict):
        return any(_has_list_of_dicts(v) for v in value.values())
    return False


def _letters(text) -> bool:
    """A string whose case can change without changing its lower case (not "ß" -> "SS")."""
    return isinstance(text, str) and text.swapcase() != text and text.swapcase().lower() == text.lower()


def _could_match(call: dict, truth: dict) -> bool:
    """The call's name and plain values are among the ground-truth call's (strings standardised)."""
    (name, allowed), = truth.items()
    same = lambda v, a: standardize(v) == standardize(a) if isinstance(v, str) and isinstance(a, str) else v == a  # noqa: E731
    return call["name"] == name and all(any(same(v, a) for a in allowed.get(k, [])) for k, v in call["arguments"].items())


class _Entry:
    """One BFCL entry: its functions, ground truth and a correct answer to perturb."""

    def __init__(self, row: dict, category: str):
        self.id, self.category = row["id"], category
        self.functions = json.loads(row["functions"])
        self.ground_truth = row["ground_truth"]
        self.reference = json.loads(row["reference_calls"])
        self.by_name = {f["name"]: f for f in self.functions}

    def declared(self, call: dict, arg: str) -> dict:
        return self.by_name[call["name"]]["parameters"]["properties"].get(arg, {})

    def required(self, call: dict) -> list[str]:
        return self.by_name[call["name"]]["parameters"].get("required", [])

    def allowed(self, index: int) -> dict:
        return next(iter(self.ground_truth[index].values()))


# Edits for the random candidates: characters and tokens inserted into a correct answer's text, and
# Python expressions given as an argument's value (each a branch of BFCL's Python decoder).
EDIT_TOKENS = list("()[]{}'\",=+-*/.:; \n~`") + [
    "True", "true", "null", "None", "not ", "**kw", "*a", "lambda x: x", "#c\n", "\\\n", "{**d}", "1e3", "f()", "x.y",
]
EXPRESSIONS = [
    "-x", "+3", "-3", "~1", "not True", "-1.5", "-'s'", "-(1)", "2**3", "1/0", "7 // 2", "2*'ab'", "[1]+[2]", "(1,)", "()",
    "{1, 2}", "b'ab'", "f'{x}'", "1j", "x[1:2]", "a.b", "a.b(c=1)", "g(1)", "g()", "None", "...", "1e999", "0x1F",
    "1_000", "[i for i in y]", "x if y else z", "a < b", "a and b", "lambda x: x", "{'k': [1, {'j': (2,)}]}", "[[1, 2], [3]]",
]


def candidates(rows_by_category: dict[str, list[dict]], random_edits: int = 0) -> list[Candidate]:
    """Every candidate for every entry (deterministic), with `random_edits` random edits of correct
    answers per entry and as many random Python expressions as argument values (verdicts undecided)."""
    out: list[Candidate] = []
    for category, rows in rows_by_category.items():
        for row in rows:
            out.extend(_entry_candidates(_Entry(row, category), random_edits))
    return out


def _random_candidates(entry: _Entry, correct: list[Candidate], count: int, rng: random.Random) -> list[Candidate]:
    found = []
    for _ in range(count):
        base = rng.choice(correct)
        text = base.text
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text) + 1)
            op = rng.random()
            if op < 0.45:
                text = text[:i] + rng.choice(EDIT_TOKENS) + text[i:]
            elif op < 0.75:
                text = text[:i] + text[i + rng.randint(1, 4):]
            else:
                j = rng.randrange(len(text) + 1)
                text = text[:i] + text[j : j + 5] + text[i:]
        found.append(Candidate(entry.id, entry.category, "random_edit", base.rendering, text, None))
        calls = copy.deepcopy(entry.reference)
        call = rng.choice(calls)
        if call["arguments"]:
            call["arguments"][rng.choice(sorted(call["arguments"]))] = Code(rng.choice(EXPRESSIONS))
            rendering = rng.choice(PYTHON_RENDERINGS)
            found.append(Candidate(entry.id, entry.category, "random_python_expression", rendering, render(calls, rendering), None))
    return found


def _entry_candidates(entry: _Entry, random_edits: int = 0) -> list[Candidate]:
    rng = random.Random(entry.id)
    found: list[Candidate] = []

    def add(kind: str, calls: list[dict], expected: bool | None, renderings=None):
        if renderings is None:  # one rendering per kind and entry, in rotation over the formats
            renderings = (RENDERINGS[(zlib.crc32(kind.encode()) + len(found) + zlib.crc32(entry.id.encode())) % len(RENDERINGS)],)
        for rendering in renderings:
            if rendering.startswith("json") and any(isinstance(v, (Code, Tup)) for c in calls for v in _walk(c["arguments"])):
                continue
            verdict = expected
            if rendering == "json_bfcl" and expected and any(_has_list_of_dicts(c["arguments"]) for c in calls):
                verdict = None  # BFCL's JSON-format decoder cuts such a list short
            found.append(Candidate(entry.id, entry.category, kind, rendering, render(calls, rendering), verdict))

    def text(kind: str, text_: str, expected: bool | None, rendering: str):
        found.append(Candidate(entry.id, entry.category, kind, rendering, text_, expected))

    ref = entry.reference
    edit = lambda: copy.deepcopy(ref)  # noqa: E731
    n = len(ref)

    # correct answers in every format; with every optional argument; the calls without brackets
    add("correct", ref, True, RENDERINGS)
    full = edit()
    for i, call in enumerate(full):
        for arg, values in entry.allowed(i).items():
            if arg not in call["arguments"] and _first(values) != "":
                value = _first(values)
                declared = entry.declared(call, arg)
                if declared.get("type") == "dict" and isinstance(value, dict):
                    value = {k: _first(v) for k, v in value.items() if "" not in v}
                elif isinstance(value, list) and declared.get("items", {}).get("type") == "dict":
                    value = [{k: _first(v) for k, v in d.items() if "" not in v} for d in value]
                call["arguments"][arg] = value
    if full != ref:
        add("correct_with_optional_args", full, True, ("python", "json_name_arguments"))
    text("python_without_brackets", render(ref, "python")[1:-1], True, "python")
    text("python_in_code_fence", "```\n" + render(ref, "python_multiline") + "\n```", True, "python")
    text("python_in_tagged_code_fence", "```python\n" + render(ref, "python") + "\n```", False, "python")
    text("python_after_prose", "Here are the calls: " + render(ref, "python"), False, "python")
    text("json_bfcl_after_prose", "Calls:\n" + render(ref, "json_bfcl") + "\nDone.",
         None if any(_has_list_of_dicts(c["arguments"]) for c in ref) else True, "json_bfcl")
    if n == 1:
        single = json.dumps({"name": ref[0]["name"], "arguments": ref[0]["arguments"]})
        text("json_single_object", single, True, "json_name_arguments")
    text("python_with_comments", "[  # the calls\n" + render(ref, "python_multiline")[2:], True, "python")
    text("python_then_prose", render(ref, "python") + "\nI hope this helps.", False, "python")
    single_quoted = repr([{"name": c["name"], "arguments": c["arguments"]} for c in ref])
    text("json_single_quoted", single_quoted, False, "json_name_arguments")  # not JSON: BFCL's tool-call decoders fail
    broken = json.dumps([{"name": c["name"], "arguments": json.dumps(c["arguments"])[:-1]} for c in ref])
    text("json_arguments_string_truncated", broken, False, "json_arguments_string")
    text("empty_output", "", False, "python")
    text("prose_only", "I cannot call a function for this request.", False, "python")
    text("empty_call_list", "[]", False, "python")

    # call-level perturbations
    if n > 1:
        # BFCL matches greedily: each ground-truth call, in order, takes the first unmatched call that
        # passes, so a call that two ground-truth calls allow can leave a correct answer unmatched
        ambiguous = any(sum(_could_match(c, t) for t in entry.ground_truth) > 1 for c in ref)
        add("parallel_reversed", ref[::-1], None if ambiguous else True)
        shuffled = edit()
        rng.shuffle(shuffled)
        add("parallel_shuffled", shuffled, None if ambiguous else True)
        add("parallel_call_missing", ref[:-1], False)
    add("call_duplicated", ref + [copy.deepcopy(ref[0])], False)
    wrong = edit()
    wrong[0]["name"] = wrong[0]["name"] + "_v2"
    add("wrong_function_name", wrong, False)
    if "." in ref[0]["name"]:
        wrong = edit()
        wrong[0]["name"] = wrong[0]["name"].replace(".", "_")
        add("function_name_underscored", wrong, False)
    others = [f["name"] for f in entry.functions if f["name"] != ref[0]["name"]]
    if others:
        wrong = edit()
        wrong[0]["name"] = others[0]
        add("other_function_of_the_entry", wrong, False)

    # argument-level perturbations, each on one argument of one call
    for i, call in enumerate(ref):
        allowed = entry.allowed(i)
        required = entry.required(call)

        def changed(arg, value, i=i):
            calls = edit()
            calls[i]["arguments"][arg] = value
            return calls

        def dropped(arg, base=None, i=i):
            calls = copy.deepcopy(base or ref)
            del calls[i]["arguments"][arg]
            return calls

        for arg in required:
            if arg in call["arguments"]:
                add("missing_required_arg", dropped(arg), False)
                break
        for arg, values in allowed.items():
            if "" in values and arg not in required and arg in full[i]["arguments"]:
                add("missing_optional_arg", dropped(arg, full), True)
                break
        for arg, values in allowed.items():
            if "" not in values and arg not in required and arg in call["arguments"]:
                add("missing_arg_the_answer_needs", dropped(arg), False)
                break
        add("extra_unknown_arg", changed("unknown_arg", "x"), False)

        for arg, value in call["arguments"].items():
            values = [v for v in allowed.get(arg, []) if v != ""]
            kind = entry.declared(call, arg).get("type")
            python_type = {"string": str, "any": str, "array": list, "tuple": list, "dict": dict}.get(kind)
            variable = any(type(v) is not python_type for v in values)  # a variable name, not a value (BFCL's is_variable)
            if kind == "integer" and type(value) is int and _numeric(values):
                all_int = all(type(v) is int for v in values)
                add("int_given_as_float", changed(arg, float(value)), False if all_int else None)
                add("int_given_as_string", changed(arg, str(value)), False)
                add("int_wrong_value", changed(arg, value + 1), None if (value + 1) in values else False)
                add("int_as_arithmetic", changed(arg, Code(f"{value - 3} + 3")), True, PYTHON_RENDERINGS)
                if value > 0:  # BFCL's decoder negates the operand of any unary operator: +5 reads as -5
                    add("int_with_unary_plus", changed(arg, Code(f"+{value}")), None if -value in values else False, PYTHON_RENDERINGS)
            if kind == "float" and type(value) in (int, float) and _numeric(values):
                if float(value).is_integer():
                    add("float_given_as_int", changed(arg, int(value)), True)
                add("float_given_as_float", changed(arg, float(value)), True)
                add("float_given_as_string", changed(arg, str(value)), False)
                add("float_wrong_value", changed(arg, value + 0.5), None if (value + 0.5) in values else False)
            if kind == "boolean" and type(value) is bool:
                add("bool_given_as_int", changed(arg, int(value)), False)
                add("bool_flipped", changed(arg, not value), (not value) in values)
                add("bool_as_json_literal_in_python", changed(arg, Code(str(value).lower())), False, PYTHON_RENDERINGS)
            if kind in ("string", "any") and isinstance(value, str) and not variable:
                std = {standardize(v) for v in values if isinstance(v, str)}
                if _letters(value):
                    add("string_case_changed", changed(arg, value.swapcase()), True)
                if " " in value:
                    add("string_spaces_as_underscores", changed(arg, value.replace(" ", "_")), True)
                    add("string_spaces_removed", changed(arg, value.replace(" ", "")), True)
                add("string_with_bfcl_punctuation", changed(arg, value + ".,-/*^_ "), True)
                add("string_with_other_punctuation", changed(arg, value + "!?"), standardize(value + "!?") in std)
                add("string_wrong_value", changed(arg, value + "zq"), standardize(value + "zq") in std)
                if " " in value:
                    head, tail = value.split(" ", 1)
                    add("string_as_concatenation", changed(arg, Code(f"{head + ' '!r} + {tail!r}")), True, PYTHON_RENDERINGS)
                add("string_given_as_call", changed(arg, Code(f"lookup(name={value!r})")), False, PYTHON_RENDERINGS)
                if value.isidentifier() and not keyword.iskeyword(value) and value not in ("True", "False", "None"):
                    add("string_as_bare_name", changed(arg, Code(value)), True, PYTHON_RENDERINGS)
                if "" in allowed.get(arg, []) and kind == "string":
                    add("empty_string_for_optional_arg", changed(arg, ""), True)
            if kind in ("array", "tuple") and isinstance(value, list) and not variable:
                items = entry.declared(call, arg).get("items", {}).get("type")
                if len(value) > 1 and value[::-1] != value:
                    rev = [standardize(v) if isinstance(v, str) else v for v in value[::-1]]
                    ok = any(isinstance(a, list) and [standardize(v) if isinstance(v, str) else v for v in a] == rev for a in values)
                    add("list_reversed", changed(arg, value[::-1]), ok if items != "dict" else None)
                if items == "string" and any(_letters(v) for v in value):
                    add("list_strings_case_changed", changed(arg, [v.swapcase() if _letters(v) else v for v in value]), True)
                if value and items in ("string", "integer", "float"):
                    add("list_item_missing", changed(arg, value[:-1]), None if any(a == value[:-1] for a in values) else False)
                add("list_as_python_tuple", changed(arg, Tup(value)), kind == "tuple", PYTHON_RENDERINGS)
                if items == "float" and value and all(type(v) is float for v in value) and all(type(v) is float for a in values for v in a):
                    if any(v.is_integer() for v in value):
                        add("float_list_item_as_int", changed(arg, [int(v) if v.is_integer() else v for v in value]), False)
                if items == "dict" and value and all(isinstance(d, dict) for d in value):
                    add("list_of_dicts_one_missing", changed(arg, value[:-1]), False if len(values) == 1 else None)
                    d = value[0]
                    key = next((k for k, v in d.items() if _letters(v)), None)
                    if key:
                        add("list_of_dicts_value_case_changed", changed(arg, [{**d, key: d[key].swapcase()}] + value[1:]), True)
            if kind == "dict" and isinstance(value, dict) and not variable:
                answer = values[0] if len(values) == 1 else None
                keys = list(value)
                if len(keys) > 1:
                    add("dict_keys_reordered", changed(arg, dict(reversed(list(value.items())))), True)
                if answer is not None:
                    needed = [k for k in keys if "" not in answer.get(k, [""])]
                    if needed:
                        add("dict_key_missing", changed(arg, {k: v for k, v in value.items() if k != needed[0]}), False)
                    add("dict_key_extra", changed(arg, {**value, "unknown_key": 1}), False)
                    key = next((k for k, v in value.items() if _letters(v)), None)
                    if key:
                        add("dict_string_value_case_changed", changed(arg, {**value, key: value[key].swapcase()}), True)
                    key = next((k for k, v in value.items() if isinstance(v, list) and any(_letters(x) for x in v)), None)
                    if key:  # BFCL standardises strings one level deep only
                        add("dict_list_value_case_changed", changed(arg, {**value, key: [x.swapcase() if _letters(x) else x for x in value[key]]}), False)
                    key = next((k for k, v in value.items() if type(v) is int), None)
                    if key:
                        add("dict_int_value_wrong", changed(arg, {**value, key: value[key] + 1}), None if (value[key] + 1) in answer[key] else False)
                add("dict_given_as_string", changed(arg, json.dumps(_plain(value))), False)
            if arg not in required and "" in allowed.get(arg, []):
                add("null_for_optional_arg", changed(arg, None), None if None in values else False)
        # Python positional arguments are not read by BFCL's decoder
        if call["arguments"] and required:
            positional = edit()
            positional[i]["arguments"] = {}
            args = ", ".join(repr(v) for v in call["arguments"].values())
            body = render(positional, "python")
            body = body.replace(f"{call['name']}()", f"{call['name']}({args})", 1) if n == 1 else None
            if body:
                text("python_positional_args", body, False, "python")
    if random_edits:
        found.extend(_random_candidates(entry, [c for c in found if c.kind == "correct"], random_edits, rng))
    return found


def _walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def ours(candidate: Candidate, gold: str) -> bool:
    return function_call_match(function_calls(candidate.text), gold) == 1.0


def gold_of(row: dict) -> str:
    return json.dumps({"ground_truth": row["ground_truth"], "functions": json.loads(row["functions"])})


# ---- the reference: bfcl-eval's decoders and checker (only in its venv) --------------------------

def _bfcl():
    import os

    os.environ.setdefault("OPENAI_API_KEY", "unused")  # the OpenAI handler builds a client it never calls
    from bfcl_eval.constants.enums import Language, ReturnFormat
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.api_inference.openai_completion import OpenAICompletionsHandler
    from bfcl_eval.model_handler.local_inference.qwen_fc import QwenFCHandler
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_function_calling_format_output

    qwen = QwenFCHandler("Qwen/Qwen3-8B", 0.001, "Qwen/Qwen3-8B-FC", True)
    openai = OpenAICompletionsHandler("gpt-4o-2024-11-20", 0.001, "gpt-4o-2024-11-20-FC", True)

    def tool_calls(text: str) -> list[dict]:
        parsed = json.loads(text.strip("`\n "))  # the generation is the tool calls' JSON
        items = parsed if isinstance(parsed, list) else [parsed]
        return [item.get("function", item) if isinstance(item.get("function"), dict) else item for item in items]

    def decode(candidate: Candidate):
        r = candidate.rendering
        if r in PYTHON_RENDERINGS:
            return default_decode_ast_prompting(candidate.text, ReturnFormat.PYTHON)
        if r == "json_bfcl":
            return default_decode_ast_prompting(candidate.text, ReturnFormat.JSON)
        calls = tool_calls(candidate.text)
        if r == "json_name_arguments":  # Hermes/Qwen tool-call format
            tagged = "\n".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)
            return qwen.decode_ast(tagged, ReturnFormat.PYTHON, False)
        # OpenAI tool calls: {name: arguments as JSON text}
        key = "parameters" if r == "json_name_parameters" else "arguments"
        raw = [{c["name"]: c[key] if isinstance(c[key], str) else json.dumps(c[key])} for c in calls]
        return openai.decode_ast(raw, ReturnFormat.PYTHON, False)

    def verdict(candidate: Candidate, row: dict) -> tuple[bool, str]:
        try:
            decoded = decode(candidate)
        except Exception as err:  # noqa: BLE001 - as _evaluate_single_ast_entry
            return False, f"ast_decoder:decoder_failed ({type(err).__name__})"
        if not is_function_calling_format_output(decoded):
            return False, "ast_decoder:decoder_wrong_output_format"
        try:
            result = ast_checker(json.loads(row["functions"]), decoded, row["ground_truth"], Language.PYTHON,
                                 candidate.category, MODEL_NAME)
        except Exception as err:  # noqa: BLE001 - the runner would stop; counted as not valid
            return False, f"checker raised {type(err).__name__}: {err}"
        return bool(result["valid"]), result.get("error_type", "")

    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=40, help="disagreements to print")
    parser.add_argument("--json", help="write every candidate with both verdicts here")
    parser.add_argument("--random-edits", type=int, default=5, help="random edits of correct answers per entry")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = {c: bfcl_rows(c) for c in CATEGORIES}
    by_id = {row["id"]: row for rs in rows.values() for row in rs}
    golds = {i: gold_of(row) for i, row in by_id.items()}
    cands = candidates(rows, args.random_edits)
    bfcl = _bfcl()

    per_kind: dict[str, Counter] = defaultdict(Counter)
    disagreements, expectation_misses, records = [], [], []
    for cand in cands:
        mine = ours(cand, golds[cand.entry_id])
        theirs, why = bfcl(cand, by_id[cand.entry_id])
        stats = per_kind[cand.kind]
        stats["n"] += 1
        stats["agree"] += mine == theirs
        stats["bfcl_valid"] += theirs
        stats["ours_valid"] += mine
        if mine != theirs:
            disagreements.append((cand, mine, theirs, why))
        if cand.expected is not None and cand.expected != theirs:
            expectation_misses.append((cand, theirs, why))
        if args.json:
            records.append({**cand.__dict__, "ours": mine, "bfcl": theirs, "bfcl_error_type": why})

    references = [(row["id"], bfcl(Candidate(row["id"], c, "reference_calls", "json_name_arguments", f" {row['reference_calls']}", True), row))
                  for c, rs in rows.items() for row in rs]
    bad_references = [(i, why) for i, (ok, why) in references if not ok]

    agree = sum(s["agree"] for s in per_kind.values())
    print(f"bfcl-eval AST checker vs function_calls + function_call_match: {len(by_id)} entries "
          f"({', '.join(f'{c} {len(r)}' for c, r in rows.items())}), {len(cands)} candidates")
    print(f"agreement: {agree}/{len(cands)} = {100 * agree / len(cands):.2f}%")
    print(f"reference_calls (training targets) valid under bfcl-eval: {len(references) - len(bad_references)}/{len(references)}")
    for i, why in bad_references:
        print(f"  invalid reference_calls: {i}: {why}")
    print(f"\n{'kind':40} {'n':>6} {'agree':>6} {'bfcl ok':>8} {'ours ok':>8}")
    for kind, s in sorted(per_kind.items()):
        print(f"{kind:40} {s['n']:6} {s['agree']:6} {s['bfcl_valid']:8} {s['ours_valid']:8}")
    by_kind = Counter(c.kind for c, *_ in disagreements)
    print(f"\ndisagreements: {len(disagreements)} ({', '.join(f'{k} {v}' for k, v in by_kind.most_common()) or 'none'})")
    for cand, mine, theirs, why in disagreements[: args.show]:
        print(f"- {cand.entry_id} {cand.kind} [{cand.rendering}] ours={int(mine)} bfcl={int(theirs)} ({why}): {cand.text[:300]!r}")
    print(f"\nrule expectations that bfcl-eval contradicts: {len(expectation_misses)}")
    for cand, theirs, why in expectation_misses[: args.show]:
        print(f"- {cand.entry_id} {cand.kind} [{cand.rendering}] expected={int(cand.expected)} bfcl={int(theirs)} ({why}): {cand.text[:300]!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f)
    print(f"\n{time.perf_counter() - start:.1f} s")
    sys.exit(0 if 100 * agree / len(cands) >= 99.5 and not bad_references else 1)


if __name__ == "__main__":
    main()
