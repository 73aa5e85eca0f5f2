import pytest

from lamdagent.evaluation.metrics import EXTRACTORS, METRICS, normalize_answer


@pytest.mark.parametrize(
    "text, expected",
    [("The answer is 1,234.", "1234"), ("3 apples then 7", "7"), ("-4", "-4"), ("2.50 dollars", "2.5"), ("none", "")],
)
def test_last_number(text, expected):
    assert EXTRACTORS["last_number"](text) == expected


@pytest.mark.parametrize("text, expected", [(" [[b]] because", "B"), ("[[ C ]]", "C"), ("(A)", ""), ("[[A]] or [[B]]", "B")])  # the last valid answer counts
def test_bracket_choice(text, expected):
    assert EXTRACTORS["bracket_choice"](text) == expected


def test_first_line_skips_blank_lines():
    assert EXTRACTORS["first_line"]("\n  Paris \nmore") == "Paris"


def test_normalised_exact_match_uses_aliases():
    metric = METRICS["normalized_exact_match"]
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metric("the Paris.", ["Lutetia", "Paris"]) == 1.0
    assert metric("Pari", "Paris") == 0.0


def test_exact_match_is_strict():
    assert METRICS["exact_match"]("7", "7") == 1.0
    assert METRICS["exact_match"]("07", "7") == 0.0
