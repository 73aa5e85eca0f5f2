"""Tool use scored as the Berkeley Function Calling Leaderboard scores it.

The extractor `function_calls` decodes a generation the way BFCL's decoders do, into BFCL's decoded
form `[{function name: {argument: value}}]`:
  - Python call syntax, `[f(a=1), g.h(b='x')]` or `f(a=1)`, over one line or several: BFCL's
    `default_decode_ast_prompting` for the Python return format (`model_handler/utils.py`);
  - BFCL's JSON return format, `[{"function": ..., "parameters": {...}}]`: the same decoder for the
    JSON return format, its quirks included (`model_handler/parser/json_parser.py`);
  - JSON tool calls, `{"name": ..., "arguments": {...}}` (a list of them, or one), with
    `"parameters"` for `"arguments"` (Llama 3.1's key), the arguments as a JSON string (OpenAI's
    tool calls), or each call wrapped as `{"type": "function", "function": {...}}`: decoded as
    BFCL's function-calling handlers decode tool calls (the JSON string of arguments loaded); the
    generation must be that JSON and nothing else, as a handler's tool calls are.
The metric `function_call_match` is BFCL's AST checker (`eval_checker/ast_eval/ast_checker.py`)
for Python, reproduced rule for rule below: bfcl-eval's checker module imports every model handler
and their SDKs (openai, anthropic, ...), too heavy to import here. Its rules: the function's declared
parameter types (an int where a float is declared is accepted, a float where an int is declared is
not; booleans are not ints; lists, tuples and one level of nested types checked), strings compared
after standardisation (spaces and `,./-_*^` dropped, lower case), dict and list-of-dict arguments
key by key, required arguments from the function's own `required` list, an argument outside the
possible answer rejected, and the calls matched to the ground truth in any order (parallel) against
the function the ground truth names (multiple). The gold therefore carries the functions:
`{"ground_truth": [...], "functions": [...]}`. `analysis/bfcl_conformance.py` measures the agreement
with bfcl-eval's real checker.

Code ported from bfcl-eval 2026.3.23 (Apache-2.0, Copyright the Gorilla/BFCL authors).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import operator
import re
import warnings
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
                "reference_calls": json.dumps(reference_calls(truth[row["id"]], row["function"])),
            })
    return rows


def reference_calls(ground_truth: list[dict], functions: list[dict]) -> list[dict]:
    """A correct answer for training, as JSON tool calls `[{"name", "arguments"}]`: each call with
    the first allowed value of each argument; optional arguments (whose allowed values include "")
    left out unless the function requires them; a dict argument (and each dict of a list of dicts)
    built the same way from its keys' allowed values."""
    by_name = {f["name"]: f for f in functions}
    calls = []
    for call in ground_truth:
        (name, allowed), = call.items()
        parameters = by_name[name]["parameters"]
        required = set(parameters.get("required", []))
        arguments = {}
        for arg, values in allowed.items():
            if "" in values and arg not in required:
                continue
            value = next((v for v in values if v != ""), "")
            declared = parameters["properties"].get(arg, {})
            if declared.get("type") == "dict" and isinstance(value, dict):
                value = _reference_dict(value)
            elif declared.get("type") == "array" and declared.get("items", {}).get("type") == "dict" and isinstance(value, list):
                value = [_reference_dict(d) if isinstance(d, dict) else d for d in value]
            arguments[arg] = value
        calls.append({"name": name, "arguments": arguments})
    return calls


def _reference_dict(allowed: dict) -> dict:
    return {k: next(x for x in v if x != "") for k, v in allowed.items() if "" not in v}


# ---- decoding: BFCL's decoders -------------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}


class _Undecodable(Exception):
    pass


def _arithmetic(node):
    """BFCL evaluates a binary operation with eval(); this evaluates the same expressions over
    literals only (a name or a call in them fails to decode here), with sizes bounded."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex, str, bytes, bool)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_arithmetic(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_arithmetic(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 1000:
            raise _Undecodable("exponent too large")
        if isinstance(node.op, ast.Mult) and any(isinstance(x, int) and x > 100_000 for x in (left, right)) \
                and any(isinstance(x, (str, bytes, list, tuple)) for x in (left, right)):
            raise _Undecodable("repetition too large")
        return _BINARY[type(node.op)](left, right)
    raise _Undecodable(f"unsupported expression: {ast.unparse(node)}")


def _resolve_value(value):
    """bfcl_eval.model_handler.utils.resolve_ast_by_type."""
    if isinstance(value, ast.Constant):
        return "..." if value.value is Ellipsis else value.value
    if isinstance(value, ast.UnaryOp):
        if not isinstance(value.operand, ast.Constant):  # BFCL negates operand.value, whatever the operator
            raise _Undecodable("unary operator on a non-literal")
        return -value.operand.value
    if isinstance(value, ast.List):
        return [_resolve_value(v) for v in value.elts]
    if isinstance(value, ast.Dict):
        if any(k is None for k in value.keys):
            raise _Undecodable("dict unpacking")
        return {_resolve_value(k): _resolve_value(v) for k, v in zip(value.keys, value.values)}
    if isinstance(value, ast.BinOp):
        return _arithmetic(value)
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Call):
        return ast.unparse(value) if not value.keywords else _resolve_call(value)
    if isinstance(value, ast.Tuple):
        return tuple(_resolve_value(v) for v in value.elts)
    if isinstance(value, ast.Subscript):
        return ast.unparse(value.value) + "[" + ast.unparse(value.slice) + "]"
    raise _Undecodable(f"unsupported AST type: {type(value).__name__}")


def _resolve_call(node: ast.Call) -> dict:
    """bfcl_eval.model_handler.utils.resolve_ast_call: {dotted name: {keyword: value}}."""
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return {".".join(reversed(parts)): {kw.arg: _resolve_value(kw.value) for kw in node.keywords}}


def _bracketed(text: str) -> str:
    text = text.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    return text


def _decode_python(text: str) -> list[dict]:
    """default_decode_ast_prompting for the Python return format."""
    with warnings.catch_warnings():  # a generation's "1st" is a SyntaxWarning, not news for the log
        warnings.simplefilter("ignore", SyntaxWarning)
        body = ast.parse(_bracketed(text).strip().strip("'"), mode="eval").body
    if isinstance(body, ast.Call):
        return [_resolve_call(body)]
    if not isinstance(body, (ast.List, ast.Tuple, ast.Set)) or not all(isinstance(e, ast.Call) for e in body.elts):
        raise _Undecodable("not a list of calls")
    return [_resolve_call(e) for e in body.elts]


def _decode_bfcl_json(text: str) -> list[dict]:
    """default_decode_ast_prompting for BFCL's JSON return format, `[{"function", "parameters"}]`,
    with its regular expressions (a list of dicts inside the arguments cuts the match short, and
    the answer decodes to no call, as in BFCL)."""
    text = _bracketed(text)
    match = re.search(r"\[.*\]", text, re.DOTALL)
    text = match.group(0) if match else text
    match = re.search(r"\[\s*{.*?}\s*(?:,\s*{.*?}\s*)*\]", text, re.DOTALL)
    text = match.group(0) if match else text
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return []
    return [{item["function"]: item["parameters"]} for item in parsed if isinstance(item, dict)]


def _decode_json(text: str) -> list[dict]:
    """BFCL's JSON format as BFCL decodes it (the list found in the text); otherwise JSON tool calls,
    the whole generation (less backticks, newlines and spaces at its ends) being their JSON, as a
    function-calling handler receives tool calls: strictly JSON, no other text."""
    try:
        calls = _decode_bfcl_json(text)
    except Exception:  # noqa: BLE001 - not BFCL's JSON format
        calls = []
    if calls:
        return calls
    parsed = json.loads(text.strip("`\n "))
    items = parsed if isinstance(parsed, list) else [parsed]
    calls = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("function"), dict):
            item = item["function"]  # OpenAI's {"type": "function", "function": {...}}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _Undecodable("a call without a name")
        arguments = item["arguments"] if "arguments" in item else item["parameters"]
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        calls.append({item["name"]: arguments})
    return calls


def _is_call_list(decoded) -> bool:
    """bfcl_eval.utils.is_function_calling_format_output."""
    return isinstance(decoded, list) and all(
        type(item) is dict and len(item) == 1 and type(next(iter(item.values()))) is dict for item in decoded
    )


def decode_calls(text: str) -> list[dict] | None:
    """The calls in a generation in BFCL's decoded form, or None when BFCL's decoders would fail or
    give something that is not a list of calls."""
    for decode in (_decode_python, _decode_json):
        try:
            decoded = decode(text)
        except Exception:  # noqa: BLE001 - any failure to decode is a failed decode, as in BFCL
            continue
        return decoded if _is_call_list(decoded) else None
    return None


@register_extractor("function_calls")
def function_calls(text: str) -> str:
    """The calls in a generation in BFCL's decoded form `[{name: {argument: value}}]`, written as a
    Python literal (tuples kept apart from lists); "" when none decode."""
    decoded = decode_calls(text)
    if decoded is None:
        return ""
    written = repr(decoded)
    try:
        if ast.literal_eval(written) == decoded:
            return written
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    return ""  # a value with no literal (inf, nan) cannot match a ground truth


# ---- checking: BFCL's AST checker for Python -----------------------------------------------------

PYTHON_TYPE_MAPPING = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                       "tuple": list, "dict": dict, "any": str}
PYTHON_NESTED_TYPE_CHECK_LIST = ["array", "tuple"]


def _invalid(error_type: str, error: str) -> dict:
    return {"valid": False, "error": [error], "error_type": error_type}


def _possible_answer_type(possible_answer: list):
    for answer in possible_answer:
        if answer != "":
            return type(answer)
    return None


def _type_checker(param, value, possible_answer, expected_type_description, expected_type_converted, nested_type_converted):
    is_variable = False
    possible_answer_type = _possible_answer_type(possible_answer)
    if possible_answer_type is not None and possible_answer_type is not expected_type_converted:
        is_variable = True  # the possible answer is a variable name, not a value
    if type(value) is expected_type_converted:
        if nested_type_converted is None:
            return {"valid": True, "error": [], "is_variable": is_variable}
        for possible_answer_item in possible_answer:
            flag = True  # each item must have the nested type of at least one possible answer
            if type(possible_answer_item) is list:
                for value_item in value:
                    if not _type_checker(param, value_item, possible_answer_item, str(nested_type_converted), nested_type_converted, None)["valid"]:
                        flag = False
                        break
            if flag:
                return {"valid": True, "error": [], "is_variable": is_variable}
        return {**_invalid("type_error:nested", f"Nested type checking failed for parameter {param!r}."), "is_variable": False}
    if possible_answer_type is not None and type(value) is possible_answer_type:
        return {"valid": True, "error": [], "is_variable": True}
    error = f"Incorrect type for parameter {param!r}. Expected type {expected_type_description}, got {type(value).__name__}."
    return {**_invalid("type_error:simple", error), "is_variable": False}


def standardize_string(input_string: str) -> str:
    """BFCL's string standardisation: no spaces or `,./-_*^`, lower case, single quotes as double."""
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", input_string).lower().replace("'", '"')


def _string_checker(param: str, model_output: str, possible_answer: list) -> dict:
    allowed = [standardize_string(a) for a in possible_answer if type(a) is str]
    if standardize_string(model_output) not in allowed:
        return _invalid("value_error:string", f"Invalid value for parameter {param!r}: {model_output!r}.")
    return {"valid": True, "error": []}


def _list_checker(param: str, model_output: list, possible_answer: list) -> dict:
    output = [standardize_string(v) if type(v) is str else v for v in model_output]
    allowed = [[standardize_string(v) if type(v) is str else v for v in answer] for answer in possible_answer]
    if output not in allowed:
        return _invalid("value_error:list/tuple", f"Invalid value for parameter {param!r}: {model_output!r}.")
    return {"valid": True, "error": []}


def _dict_checker(param: str, model_output: dict, possible_answers: list) -> dict:
    """One level deep, as in BFCL: each key's value among that key's allowed values."""
    result = _invalid("dict_checker:unclear", "")
    for possible_answer in possible_answers:
        if possible_answer == "":
            continue
        flag = True
        for key, value in model_output.items():
            if key not in possible_answer:
                result, flag = _invalid("value_error:dict_key", f"Unexpected dict key parameter: {key!r}."), False
                break
            standardized = standardize_string(value) if type(value) is str else value
            allowed = [standardize_string(a) if type(a) is str else a for a in possible_answer[key]]
            if standardized not in allowed:
                result, flag = _invalid("value_error:dict_value", f"Invalid value for parameter {key!r}: {value!r}."), False
                break
        for key, value in possible_answer.items():
            if key not in model_output and "" not in value:
                result, flag = _invalid("value_error:dict_key", f"Missing dict key parameter: {key!r}."), False
                break
        if flag:
            return {"valid": True, "error": []}
    return result


def _list_dict_checker(param: str, model_output: list, possible_answers: list) -> dict:
    """Each dict of the list against the dict at the same position of one possible answer."""
    result = _invalid("list_dict_checker:unclear", "")
    for answer in possible_answers:
        if len(model_output) != len(answer):
            result = _invalid("value_error:list_dict_count", "Wrong number of dictionaries in the list.")
            continue
        flag = True
        for index in range(len(model_output)):
            result = _dict_checker(param, model_output[index], [answer[index]])
            if not result["valid"]:
                flag = False
                break
        if flag:
            return {"valid": True, "error": []}
    return result


def simple_function_checker(func_description: dict, model_output: dict, possible_answer: dict) -> dict:
    """One decoded call `{name: {arg: value}}` against one ground-truth call `{name: {arg: [allowed]}}`
    and the function's description (BFCL's simple_function_checker, Python language)."""
    possible_answer = list(possible_answer.values())[0]
    func_name = func_description["name"]
    param_details = func_description["parameters"]["properties"]
    required_params = func_description["parameters"]["required"]
    if func_name not in model_output:
        return _invalid("simple_function_checker:wrong_func_name", f"Function name {func_name!r} not found in model output.")
    model_params = model_output[func_name]
    for param in required_params:
        if param not in model_params:
            return _invalid("simple_function_checker:missing_required", f"Missing required parameter: {param!r}.")
    for param, value in model_params.items():
        if param not in param_details or param not in possible_answer:
            return _invalid("simple_function_checker:unexpected_param", f"Unexpected parameter: {param!r}.")
        expected_type_description = param_details[param]["type"]
        expected_type_converted = PYTHON_TYPE_MAPPING[expected_type_description]
        nested_type_converted = None
        if expected_type_description in PYTHON_NESTED_TYPE_CHECK_LIST:
            nested_type_converted = PYTHON_TYPE_MAPPING[param_details[param]["items"]["type"]]
        if expected_type_description == "tuple" and type(value) is tuple:
            value = list(value)  # ground-truth tuples are JSON lists
        if expected_type_description == "float" and type(value) is int:
            value = float(value)  # Python's int-to-float promotion
        type_check = _type_checker(param, value, possible_answer[param], expected_type_description, expected_type_converted, nested_type_converted)
        if not type_check["valid"]:
            return type_check
        if not type_check["is_variable"]:
            checker = None
            if expected_type_converted is dict:
                checker = _dict_checker
            elif expected_type_converted is list and nested_type_converted is dict:
                checker = _list_dict_checker
            elif expected_type_converted is str:
                checker = _string_checker
            elif expected_type_converted is list:
                checker = _list_checker
            if checker is not None:
                result = checker(param, value, possible_answer[param])
                if not result["valid"]:
                    return result
                continue
        if value not in possible_answer[param]:
            return _invalid("value_error:others", f"Invalid value for parameter {param!r}: {value!r}.")
    for param in possible_answer:
        if param not in model_params and "" not in possible_answer[param]:
            return _invalid("simple_function_checker:missing_optional", f"Optional parameter {param!r} not provided and not marked as optional.")
    return {"valid": True, "error": []}


def _find_description(functions: list[dict], name: str) -> dict | None:
    return next((f for f in functions if f["name"] == name), None)


def check_calls(functions: list[dict], calls: list[dict], ground_truth: list[dict]) -> dict:
    """BFCL's ast_checker for Python: as many calls as the ground truth; each ground-truth call, in
    order, takes the first still unmatched call that passes (parallel_function_checker_no_order).
    With one ground-truth call this is also the simple and the multiple checker (the function the
    ground truth names, among several)."""
    if len(calls) != len(ground_truth):
        return _invalid("wrong_count", "Wrong number of functions.")
    matched: list[int] = []
    for truth in ground_truth:
        description = _find_description(functions, next(iter(truth)))
        if description is None:
            return _invalid("no_description", f"No function description for {next(iter(truth))!r}.")
        result = None
        for index, call in enumerate(calls):
            if index in matched:
                continue
            result = simple_function_checker(description, call, truth)
            if result["valid"]:
                matched.append(index)
                break
        if result is None or not result["valid"]:
            return result if len(calls) == 1 else _invalid("cannot_find_match", f"No call matches {truth!r}.")
    return {"valid": True, "error": []}


@register_metric("function_call_match")
def function_call_match(prediction: str, gold: str | list[str]) -> float:
    """1.0 when BFCL's AST checker accepts the decoded calls against the gold
    `{"ground_truth": [...], "functions": [...]}` (functions may be JSON text)."""
    record = json.loads(gold if isinstance(gold, str) else gold[0])
    if "functions" not in record:
        raise UserError('function_call_match needs the functions in the gold: {"ground_truth": [...], "functions": [...]} '
                        "(see conf/tasks/bfcl_simple_python.yaml)")
    if not prediction:
        return 0.0
    functions = record["functions"]
    functions = json.loads(functions) if isinstance(functions, str) else functions
    try:
        calls = ast.literal_eval(prediction)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return 0.0
    if not _is_call_list(calls):
        return 0.0
    try:
        return float(check_calls(functions, calls, record["ground_truth"])["valid"])
    except Exception:  # noqa: BLE001 - where BFCL's checker would raise (an undeclared type), no match
        return 0.0
