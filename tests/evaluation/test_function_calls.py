"""Tool use: BFCL's decoding and AST checking on hand-made calls, and the real BFCL data shipped by
bfcl-eval. Every verdict in CASES was measured with bfcl-eval 2026.3.23's own decoders and
ast_checker (category parallel); analysis/bfcl_conformance.py does that over all of BFCL."""

import json

import pytest

from lamdagent.errors import UserError
from lamdagent.evaluation.function_calls import decode_calls, function_call_match, function_calls
from lamdagent.evaluation.tasks import load_task

FUNCTIONS = [{
    "name": "spotify.play",
    "description": "Play songs of an artist.",
    "parameters": {"type": "dict", "required": ["artist", "duration"], "properties": {
        "artist": {"type": "string", "description": "The artist."},
        "duration": {"type": "integer", "description": "Minutes to play."},
        "volume": {"type": "float", "description": "Volume."},
        "shuffle": {"type": "boolean", "description": "Shuffle."},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags."},
        "options": {"type": "dict", "description": "Options.", "properties": {
            "quality": {"type": "string"}, "crossfade": {"type": "integer"}}},
    }},
}]
GROUND_TRUTH = [
    {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20], "volume": [2.0, ""], "shuffle": [True, ""],
                      "tags": [["pop", "live"], ""], "options": [{"quality": ["high"], "crossfade": [3, ""]}, ""]}},
    {"spotify.play": {"artist": ["Maroon 5"], "duration": [15], "shuffle": ["", False]}},
]
GOLD = json.dumps({"ground_truth": GROUND_TRUTH, "functions": FUNCTIONS})

TAYLOR = {"artist": "Taylor Swift", "duration": 20}
MAROON = {"artist": "Maroon 5", "duration": 15}


def _json(*calls: dict, key: str = "arguments") -> str:
    return json.dumps([{"name": "spotify.play", key: arguments} for arguments in calls])


def _python(*calls: str) -> str:
    return "[" + ", ".join(f"spotify.play({c})" for c in calls) + "]"


MAROON_PY = "artist='Maroon 5', duration=15"
CASES = [
    ("json tool calls", _json(TAYLOR, MAROON), True),
    ("order-free, standardised string", _json({"artist": "maroon-5", "duration": 15}, TAYLOR), True),
    ("Python calls", _python("artist='Taylor Swift', duration=20", MAROON_PY), True),
    ("Python calls over several lines",
     "[\n  spotify.play(\n    artist='Taylor Swift',\n    duration=20\n  ),\n  spotify.play(artist='Maroon 5',\n    duration=15)\n]", True),
    ("without brackets", f"spotify.play(artist='Taylor Swift', duration=20), spotify.play({MAROON_PY})", True),
    ('"parameters" for "arguments"', _json(TAYLOR, MAROON, key="parameters"), True),
    ("arguments as a JSON string", json.dumps([{"name": "spotify.play", "arguments": json.dumps(a)} for a in (TAYLOR, MAROON)]), True),
    ("OpenAI tool calls", json.dumps([{"type": "function", "function": {"name": "spotify.play", "arguments": json.dumps(a)}} for a in (TAYLOR, MAROON)]), True),
    ("BFCL's JSON format", json.dumps([{"function": "spotify.play", "parameters": a} for a in (TAYLOR, MAROON)]), True),
    ("every optional argument", _python("artist='Taylor Swift', duration=20, volume=2.0, shuffle=True, tags=['pop', 'live'], "
                                        "options={'quality': 'high', 'crossfade': 3}", MAROON_PY + ", shuffle=False"), True),
    ("an int for a float", _python("artist='Taylor Swift', duration=20, volume=2", MAROON_PY), True),
    ("a float for an int", _python("artist='Taylor Swift', duration=20.0", MAROON_PY), False),
    ("an int for a boolean", _python("artist='Taylor Swift', duration=20, shuffle=1", MAROON_PY), False),
    ("a number as a string", _python("artist='Taylor Swift', duration='20'", MAROON_PY), False),
    ("spaces and punctuation of BFCL's set ignored", _python("artist='TAYLOR_SWIFT.', duration=20", MAROON_PY), True),
    ("other punctuation counts", _python("artist='Taylor Swift!', duration=20", MAROON_PY), False),
    ("list strings standardised", _python("artist='Taylor Swift', duration=20, tags=['POP', 'Live']", MAROON_PY), True),
    ("list order counts", _python("artist='Taylor Swift', duration=20, tags=['live', 'pop']", MAROON_PY), False),
    ("a tuple for an array", _python("artist='Taylor Swift', duration=20, tags=('pop', 'live')", MAROON_PY), False),
    ("a dict argument", _python("artist='Taylor Swift', duration=20, options={'quality': 'HIGH'}", MAROON_PY), True),
    ("a dict with an unknown key", _python("artist='Taylor Swift', duration=20, options={'quality': 'high', 'gain': 1}", MAROON_PY), False),
    ("a dict missing a key", _python("artist='Taylor Swift', duration=20, options={'crossfade': 3}", MAROON_PY), False),
    ("a wrong value", _json({**TAYLOR, "duration": 21}, MAROON), False),
    ("a required argument missing", _json({"artist": "Taylor Swift"}, MAROON), False),
    ("an unknown argument", _json({**TAYLOR, "speed": 3}, MAROON), False),
    ("a call missing", _json(TAYLOR), False),
    ("a wrong function", json.dumps([{"name": "spotify.stop", "arguments": TAYLOR}, {"name": "spotify.play", "arguments": MAROON}]), False),
    ("a dotted name written with underscores", "[spotify_play(artist='Taylor Swift', duration=20), " + f"spotify_play({MAROON_PY})]", False),
    ("JSON with single quotes", str([{"name": "spotify.play", "arguments": a} for a in (TAYLOR, MAROON)]), False),
    ("Python calls after prose", "Sure: " + _python("artist='Taylor Swift', duration=20", MAROON_PY), False),
    ("prose", "I would play some music.", False),
    ("nothing", "", False),
]


@pytest.mark.parametrize("text, reward", [(text, reward) for _, text, reward in CASES], ids=[name for name, _, _ in CASES])
def test_bfcl_verdicts(text, reward):
    assert function_call_match(function_calls(text), GOLD) == float(reward)


def test_required_by_the_function_even_where_the_answer_marks_it_optional():
    # simple_python_17, simple_python_200 and parallel_88 allow "" for an argument the function requires
    gold = json.dumps({"ground_truth": [{"spotify.play": {"artist": ["Adele"], "duration": [20, ""]}}], "functions": FUNCTIONS})
    assert function_call_match(function_calls("spotify.play(artist='Adele', duration=20)"), gold) == 1.0
    assert function_call_match(function_calls("spotify.play(artist='Adele')"), gold) == 0.0


def test_decoded_form_keeps_tuples_and_number_types():
    text = "[spotify.play(artist=Adele, duration=-3, volume=2 * 1.5, tags=('a', 'b'))]"
    assert decode_calls(text) == [{"spotify.play": {"artist": "Adele", "duration": -3, "volume": 3.0, "tags": ("a", "b")}}]
    extracted = function_calls(text)
    assert "('a', 'b')" in extracted and "3.0" in extracted


def test_gold_without_functions_is_a_user_error():
    with pytest.raises(UserError, match="functions"):
        function_call_match(function_calls(_json(TAYLOR)), json.dumps({"ground_truth": GROUND_TRUTH}))


@pytest.mark.parametrize("name, size", [("bfcl_simple_python", 400), ("bfcl_multiple", 200), ("bfcl_parallel", 200)])
def test_bfcl_categories_load_offline_with_disjoint_splits(name, size):
    task = load_task(name)
    quarter = size // 4
    val, test, train = (task.examples(split, n) for split, n in (("val", quarter), ("test", quarter), ("train", size - 2 * quarter)))
    prompts = [{e.prompt for e in part} for part in (val, test, train)]
    assert not (prompts[0] & prompts[1]) and not (prompts[0] & prompts[2]) and not (prompts[1] & prompts[2])
    assert all(task.score(e.target, e.gold)[1] == 1.0 for e in val + test + train)  # reference calls pass BFCL's checker
    assert "functions" in json.loads(val[0].gold) and "ground_truth" in json.loads(val[0].gold)
    assert "You can call these functions" in val[0].prompt and val[0].prompt.endswith("Calls:")
