"""The `regex` extractor and extraction steps configured in a task YAML (lm-eval's filter lists);
bad patterns and options are one-line errors naming the task file, before any compute."""

from __future__ import annotations

import pytest

from lamdagent.errors import UserError
from lamdagent.evaluation.extraction import Extraction
from lamdagent.evaluation.metrics import EXTRACTORS
from lamdagent.evaluation.tasks import load_task


@pytest.mark.parametrize("options, text, answer", [
    ({"regex_pattern": r"(\d+)"}, "3 then 7", "3"),  # the first match by default (lm-eval's group_select: 0)
    ({"regex_pattern": r"(\d+)", "group_select": -1}, "3 then 7", "7"),
    ({"regex_pattern": r"(\d+)", "group_select": 2}, "3 then 7", "[invalid]"),  # no third match: the fallback
    ({"regex_pattern": r"answer: (\w+)", "fallback": "none"}, "no such thing", "none"),
    ({"regex_pattern": r"answer: (\w+)"}, "ANSWER: Paris", "[invalid]"),
    ({"regex_pattern": r"answer: (\w+)", "flags": ["ignorecase"]}, "ANSWER: Paris", "Paris"),
    ({"regex_pattern": r"^(\w+)$", "flags": ["multiline"], "group_select": -1}, "first\nlast", "last"),
    ({"regex_pattern": r"(\w+) costs (\d+)", "group": 2}, "a pen costs 3", "3"),  # a chosen group, not the first non-empty
    ({"regex_pattern": r"(?P<item>\w+) costs (?P<price>\d+)", "group": "price"}, "a pen costs 3", "3"),
    ({"regex_pattern": r"(\w+) costs (\d+)", "group": 0}, "a pen costs 3", "pen costs 3"),
    ({"regex_pattern": r"(x)?(\d+)"}, "  42 ", "42"),  # several groups: the first non-empty, stripped (lm-eval)
])
def test_the_regex_extractor(options, text, answer):
    assert EXTRACTORS["regex"](text, **options) == answer
    assert Extraction("regex", options)(text) == answer  # as a task names it, options checked first


def test_steps_compose_in_order():
    steps = ["first_line", {"function": "regex", "regex_pattern": r"is (\w+)", "flags": "ignorecase"}, "take_last"]
    assert Extraction(steps)("\n  It IS Paris.\nit is Rome") == "Paris"  # the first line only, then its match


def test_a_task_yaml_configures_regex_steps_and_scores_with_them(tmp_path):
    task_file = tmp_path / "answers.yaml"
    task_file.write_text(r'''name: answers
source: synthetic:arithmetic
extractor:                       # lm-eval's filter list, pasted
  - function: "regex"
    regex_pattern: "the answer is (\\-?[0-9]+)"
    group_select: -1
    flags: [ignorecase]
  - function: "take_first"
metric: exact_match
''')
    task = load_task(str(task_file))
    assert task.score("the answer is 3. No: The Answer is 12", "12") == ("12", 1.0)
    assert task.score("twelve", "12") == ("[invalid]", 0.0)


@pytest.mark.parametrize("extractor, message", [
    ('regex\nextractor_args: {regex_pattern: "(unclosed"}', r"regex_pattern '\(unclosed' is not a regular expression: missing \)"),
    ('regex\nextractor_args: {regex_pattern: "x", flags: [ignorecas]}', "flag 'ignorecas' is not one of"),
    ('regex\nextractor_args: {regex_pattern: "x", group_select: last}', "group_select must be an integer .*, got 'last'"),
    ('regex\nextractor_args: {regex_pattern: "(x)", group: 2}', r"group 2 is not a group of regex_pattern '\(x\)' \(0 to 1\)"),
    ('regex\nextractor_args: {group_select: 1}', "extractor 'regex' needs the option 'regex_pattern'"),
    ('regex\nextractor_args: {pattern: "x"}', "extractor 'regex' has no option 'pattern'; it takes"),
    ('[{function: regex, regex_pattern: "x"}, {function: take_frist}]', "unknown extractor 'take_frist'; expected one of"),
    ('[{function: regex, regex_pattern: "x"}, {function: take_first, n: 2}]', r"step 'take_first' takes no options, got \['n'\]"),
    ('[regex]\nextractor_args: {regex_pattern: "x"}', "extractor_args .* apply to a named extractor"),
    ("[42]", "extractor step 42 is not a name or a mapping"),
])
def test_a_bad_regex_or_option_is_one_line_naming_the_task_file(tmp_path, extractor, message):
    task_file = tmp_path / "bad_task.yaml"
    task_file.write_text(f"name: bad_task\nsource: synthetic:arithmetic\nextractor: {extractor}\n")
    with pytest.raises(UserError, match=message) as err:
        load_task(str(task_file))
    assert str(err.value).startswith(f"task file {str(task_file)!r}: task 'bad_task': ") and "\n" not in str(err.value)
