"""Tool use: parse a model's function calls and match them to the ground truth by name and
arguments (a structural, AST-style match as in BFCL and ACEBench's normal setting, not string
equality). The Berkeley Function Calling Leaderboard data ships offline in the `bfcl-eval` package.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

from lamdagent.errors import UserError
from lamdagent.evaluation.metrics import register_extractor, register_metric


def bfcl_rows(category: str) -> list[dict]:
    """One BFCL category (simple_python, multiple, parallel, ...) as rows of question, functions
    (JSON text) and ground truth, read from the bfcl-eval package without importing it."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("BFCL tasks need the bfcl-eval package's data: pip install --no-deps bfcl-eval")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    questions, answers = data / f"BFCL_v4_{category}.json", data / "possible_answer" / f"BFCL_v4_{category}.json"
    if not answers.exists():
        known = sorted(p.stem.removeprefix("BFCL_v4_") for p in (data / "possible_answer").glob("*.json"))
        raise UserError(f"unknown BFCL category {category!r}; expected one of {known}")
    truth = {row["id"]: row["ground_truth"] for row in map(json.loads, answers.read_text().splitlines())}
    rows = []
    for row in map(json.loads, questions.read_text().splitlines()):
        if row["id"] in truth:
            turns = row["question"][0]
            rows.append({
                "id": row["id"],
                "question": "\n".join(turn["content"] for turn in turns if turn["role"] == "user"),
                "functions": json.dumps(row["function"]),
                "ground_truth": truth[row["id"]],
                "reference_calls": json.dumps(reference_calls(truth[row["id"]])),
            })
    return rows


def reference_calls(ground_truth: list[dict]) -> list[dict]:
    """A correct answer for training: each call with the first allowed value of each argument
    (optional arguments, whose allowed values include "", left out)."""
    calls = []
    for call in ground_truth:
        (name, arguments), = call.items()
        calls.append({"name": name, "arguments": {k: v[0] for k, v in arguments.items() if "" not in v}})
    return calls


def _python_calls(text: str) -> list[dict] | None:
    """`f(a=1), g.h(b='x')` or `[f(a=1)]` as calls, if the text parses as Python."""
    try:
        tree = ast.parse(text.strip().strip("[]"), mode="eval").body
    except SyntaxError:
        return None
    nodes = tree.elts if isinstance(tree, ast.Tuple) else [tree]
    calls = []
    for node in nodes:
        if not isinstance(node, ast.Call):
            return None
        try:
            arguments = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except ValueError:
            return None
        calls.append({"name": ast.unparse(node.func), "arguments": arguments})
    return calls


@register_extractor("function_calls")
def function_calls(text: str) -> str:
    """The calls in a generation as canonical JSON `[{"name", "arguments"}]`, from a JSON list or
    object, or Python call syntax; "" when none parse."""
    start, end = text.find("["), text.rfind("]")
    candidates = [text[start : end + 1]] if 0 <= start < end else []
    if "{" in text:
        candidates.append(text[text.find("{") : text.rfind("}") + 1])
    for candidate in candidates:
        try:
            parsed = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        parsed = parsed if isinstance(parsed, list) else [parsed]
        if all(isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict) for c in parsed):
            return json.dumps([{"name": c["name"], "arguments": c.get("arguments", {})} for c in parsed], sort_keys=True)
    calls = _python_calls(text.split("\n")[0]) if text.strip() else None
    return json.dumps(calls, sort_keys=True) if calls else ""


def _same_value(value, allowed) -> bool:
    if isinstance(value, str) and isinstance(allowed, str):
        return value.strip().lower() == allowed.strip().lower()
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if isinstance(value, (int, float)) and isinstance(allowed, (int, float)):
        return float(value) == float(allowed)
    if isinstance(value, list) and isinstance(allowed, list):
        return len(value) == len(allowed) and all(_same_value(v, a) for v, a in zip(value, allowed))
    if isinstance(value, dict) and isinstance(allowed, dict):
        return value.keys() == allowed.keys() and all(_same_value(value[k], allowed[k]) for k in value)
    return value == allowed


def call_matches(call: dict, truth: dict) -> bool:
    """One predicted call against one ground-truth call `{name: {arg: [allowed values]}}`: same
    name, no unknown argument, every required argument present, every value allowed."""
    (name, allowed), = truth.items()
    arguments = call.get("arguments", {})
    if call.get("name") != name or set(arguments) - set(allowed):
        return False
    for arg, values in allowed.items():
        if arg not in arguments:
            if "" not in values:
                return False
        elif not any(_same_value(arguments[arg], v) for v in values if v != ""):
            return False
    return True


@register_metric("function_call_match")
def function_call_match(prediction: str, gold: str | list[str]) -> float:
    """1.0 when the predicted calls match the ground truth one to one, in any order (parallel calls)."""
    if not prediction:
        return 0.0
    truth = json.loads(gold if isinstance(gold, str) else gold[0])["ground_truth"]
    calls = json.loads(prediction)
    if len(calls) != len(truth):
        return 0.0
    unmatched = list(truth)
    for call in calls:
        match = next((t for t in unmatched if call_matches(call, t)), None)
        if match is None:
            return 0.0
        unmatched.remove(match)
    return 1.0
