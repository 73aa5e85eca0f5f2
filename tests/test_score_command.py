"""`lamdagent score`: generations scored with a task's current definition, without a model."""

from __future__ import annotations

import json

import pytest

from lamdagent.cli import main
from lamdagent.evaluation.tasks import load_task


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_file_of_docs_and_generations_is_scored(tmp_path, capsys):
    task = load_task("arith")
    rows = task.rows("val", 3)
    answers = [rows[0]["answer"], "no idea", f"so it is {rows[2]['answer']}."]
    source = tmp_path / "gen.jsonl"
    source.write_text("\n".join(json.dumps({"doc": row, "generation": f" {a}"}) for row, a in zip(rows, answers)) + "\n")
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--task", "arith", "--input", str(source), "--output", str(out)]) == 0
    scored = _lines(out)
    assert [r["reward"] for r in scored[:3]] == [1.0, 0.0, 1.0]
    assert scored[0]["answer"] == str(rows[0]["answer"]) and scored[1]["answer"] == ""
    assert scored[-1]["aggregate"]["mean_reward"] == pytest.approx(2 / 3) and scored[-1]["aggregate"]["rows"] == 3
    assert scored[-1]["aggregate"]["definition"] == task.definition_key()
    assert "mean reward 0.6667 over 3 rows" in capsys.readouterr().err


def test_rows_given_by_id_are_looked_up_in_the_task(tmp_path):
    task = load_task("bfcl_simple_python")
    row = task.rows("val", 1)[0]
    right = task.example(row).target  # the task's own training target is a correct call
    source = tmp_path / "gen.jsonl"
    source.write_text(json.dumps({"id": row["id"], "generation": right}) + "\n" + json.dumps({"id": row["id"], "generation": "nothing"}) + "\n")
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--task", "bfcl_simple_python", "--input", str(source), "--output", str(out)]) == 0
    scored = _lines(out)
    assert [r["id"] for r in scored[:2]] == [row["id"], row["id"]] and [r["reward"] for r in scored[:2]] == [1.0, 0.0]


@pytest.mark.parametrize("content, message", [
    ('{"doc": {}, "text": "x"}\n', "row 1: expected an object with a string 'generation'"),
    ('{"generation": "x"}\n', "row 1: expected 'doc', 'id' or 'gold' beside 'generation'"),
    ("not json\n", "gen.jsonl:1 is not JSON"),
    ('{"id": "nope", "generation": "x"}\n', "has no row with id 'nope'"),
])
def test_bad_rows_are_one_line_errors(tmp_path, capsys, content, message):
    source = tmp_path / "gen.jsonl"
    source.write_text(content)
    assert main(["score", "--task", "bfcl_simple_python", "--input", str(source)]) == 2
    assert message in capsys.readouterr().out


def test_a_runs_logged_predictions_are_rescored(tracking_uri, tmp_path):
    from lamdagent.tracking import Kind, Tracker

    tracker = Tracker(tracking_uri)
    experiment = tracker.experiment("unit")
    run = tracker.start_child(tracker.start_exploration(experiment, "unit", {}, {}), Kind.ACTION, 1, "m1", {}, experiment_id=experiment)
    logged = [{"prompt": "Q", "generation": " 12", "answer": "12", "gold": "12", "reward": 1.0},
              {"prompt": "Q", "generation": " it is 7.", "answer": "", "gold": "7", "reward": 0.0}]  # scored by an old, stricter extractor
    tracker.log_json(run, logged, "predictions/val/arith.json")
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--task", "arith", "--run", run, "--output", str(out), "--tracking-uri", tracking_uri]) == 0
    scored = _lines(out)
    assert [r["reward"] for r in scored[:2]] == [1.0, 1.0] and scored[-1]["aggregate"]["mean_reward"] == 1.0
    assert main(["score", "--task", "facts", "--run", run, "--tracking-uri", tracking_uri]) == 2  # no predictions of that task
