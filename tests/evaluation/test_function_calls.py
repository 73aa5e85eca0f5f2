"""Tool use: call parsing and the structural match, and the real BFCL data shipped by bfcl-eval."""

import json

import pytest

from lamdagent.evaluation.function_calls import function_call_match, function_calls
from lamdagent.evaluation.tasks import load_task

GOLD = json.dumps({"ground_truth": [
    {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
    {"spotify.play": {"artist": ["Maroon 5"], "duration": [15], "shuffle": [True, ""]}},
]})


def _score(text: str) -> float:
    return function_call_match(function_calls(text), GOLD)


@pytest.mark.parametrize(
    "text, reward",
    [
        ('[{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}},'
         ' {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}]', 1.0),
        # parallel calls in the other order, a number as a float, case and an allowed optional argument
        ('[{"name": "spotify.play", "arguments": {"artist": "maroon 5", "duration": 15.0, "shuffle": true}},'
         ' {"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}]', 1.0),
        ("spotify.play(artist='Taylor Swift', duration=20), spotify.play(artist='Maroon 5', duration=15)", 1.0),  # Python syntax
        ('[{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 21}},'
         ' {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}]', 0.0),  # a wrong value
        ('[{"name": "spotify.play", "arguments": {"artist": "Taylor Swift"}},'
         ' {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}]', 0.0),  # a required argument missing
        ('[{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20, "volume": 3}},'
         ' {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}]', 0.0),  # an unknown argument
        ('[{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}]', 0.0),  # a call missing
        ('[{"name": "spotify.stop", "arguments": {"artist": "Taylor Swift", "duration": 20}},'
         ' {"name": "spotify.play", "arguments": {"artist": "Maroon 5", "duration": 15}}]', 0.0),  # a wrong function
        ("I would play some music.", 0.0),
    ],
)
def test_structural_match(text, reward):
    assert _score(text) == reward


def test_string_equality_is_not_the_test():
    spaced = ('[ { "arguments": {"duration": 20, "artist": "Taylor Swift"}, "name": "spotify.play" },'
              ' {"name": "spotify.play", "arguments": {"duration": 15, "artist": "Maroon 5"}} ]')
    assert _score(spaced) == 1.0


@pytest.mark.parametrize("name, size", [("bfcl_simple_python", 400), ("bfcl_multiple", 200), ("bfcl_parallel", 200)])
def test_bfcl_categories_load_offline_with_disjoint_splits(name, size):
    task = load_task(name)
    quarter = size // 4
    val, test, train = (task.examples(split, n) for split, n in (("val", quarter), ("test", quarter), ("train", size - 2 * quarter)))
    prompts = [{e.prompt for e in part} for part in (val, test, train)]
    assert not (prompts[0] & prompts[1]) and not (prompts[0] & prompts[2]) and not (prompts[1] & prompts[2])
    assert all(task.score(e.target, e.gold)[1] == 1.0 for e in val + test + train)  # reference calls are correct
    assert "You can call these functions" in val[0].prompt and val[0].prompt.endswith("Calls:")
