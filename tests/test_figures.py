"""The report's figures: the window statistics exactly, and each figure a real, non-blank PNG."""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import pytest

from lamdagent.reporting.figures import (
    PipelineNode,
    ScalingPoint,
    _positions,
    dag_layers,
    pipeline_dag,
    scaling_curves,
    score_by_iteration,
    window_stats,
)


def assert_png(path, min_px=300):
    assert path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.shape[0] > min_px and img.shape[1] > min_px, img.shape
    assert img[..., :3].std() > 0.01, "blank image"
    return img


# --------------------------------------------------------------------------- window statistics


def test_window_stats_trailing_window_counts_iterations():
    # iteration 3 failed (missing): the window at iteration 4 is (2, 4] and holds iteration 4 only
    st = window_stats([(4, 2.0), (1, 1.0), (2, 3.0)], window=2)
    assert st.iterations == [1, 2, 4]
    assert st.scores == [1.0, 3.0, 2.0]
    assert st.mean == [1.0, 2.0, 2.0]
    assert st.std == [0.0, 1.0, 0.0]
    assert st.running_max == [1.0, 3.0, 3.0]


def test_window_stats_numbers():
    pts = [(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0), (5, 10.0)]
    st = window_stats(pts, window=3)
    assert st.mean == [0.0, 0.5, 1.0, 2.0, 5.0]
    # population std (ddof=0) of the trailing three
    assert st.std[:4] == pytest.approx([0.0, 0.5, math.sqrt(2 / 3), math.sqrt(2 / 3)])
    assert st.std[4] == pytest.approx(math.sqrt(((2 - 5) ** 2 + (3 - 5) ** 2 + (10 - 5) ** 2) / 3))
    assert st.running_max == [0.0, 1.0, 2.0, 3.0, 10.0]


def test_window_stats_drops_failed_and_handles_short_series():
    st = window_stats([(1, 0.5), (2, None), (3, float("nan")), (4, 0.7)], window=10)
    assert st.iterations == [1, 4]
    assert st.mean == pytest.approx([0.5, 0.6])  # shorter than the window: the mean of what exists
    assert st.std == pytest.approx([0.0, 0.1])
    assert st.running_max == [0.5, 0.7]
    assert window_stats([], 5).iterations == []


def test_window_of_one_is_the_series():
    pts = [(1, 0.3), (2, 0.1), (3, 0.4)]
    st = window_stats(pts, 1)
    assert st.mean == [0.3, 0.1, 0.4] and st.std == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        window_stats(pts, 0)


# --------------------------------------------------------------------------- score by iteration


def test_score_by_iteration_png(tmp_path):
    series = {
        "LaMDAgent": [(i, 0.5 + 0.02 * i + (0.1 if i % 3 else -0.1)) for i in range(1, 31) if i not in (7, 8)],
        "random policy": [(i, 0.4 + 0.01 * i) for i in range(1, 31)],
        "merges only": [(1, 0.3), (2, 0.6)],  # shorter than the window
        "all failed": [],
    }
    out = score_by_iteration(series, tmp_path / "sub" / "score.png", window=10, title="demo")
    assert out == tmp_path / "sub" / "score.png"
    assert_png(out)


def test_score_by_iteration_empty(tmp_path):
    assert_png(score_by_iteration({}, tmp_path / "empty.png"))


# --------------------------------------------------------------------------- pipeline DAG


def lineage():
    # base -> spec_a, spec_b; m1 = ties(spec_a, spec_b); m2 = sft(m1); m3 = ties(m2, spec_a): spec_a is shared
    return [
        PipelineNode("r3", "m3", "ties(w=0.5, d=0.5)", 2.1, ["r2", "ra"]),
        PipelineNode("r2", "m2", "sft(all, lr=3e-3)", 1.7, ["r1"]),
        PipelineNode("r1", "m1", "ties(w=0.5, d=0.5)", 1.4, ["ra", "rb"]),
        PipelineNode("ra", "spec_arith", "sft(arith, lr=1e-3)", 1.0, ["rb0"]),
        PipelineNode("rb", "spec_facts", "sft(facts, lr=1e-3)", None, ["rb0"]),
        PipelineNode("rb0", "base", "", 0.0, []),
        PipelineNode("ra", "spec_arith", "sft(arith, lr=1e-3)", 1.0, ["rb0"]),  # listed twice: drawn once
    ]


def test_dag_layers_shared_ancestor_and_merge():
    depth = dag_layers(lineage())
    assert depth == {"r3": 4, "r2": 3, "r1": 2, "ra": 1, "rb": 1, "rb0": 0}
    unique = {n.run_id: n for n in lineage()}
    pos = _positions(unique, depth)
    assert len(set(pos.values())) == len(unique) == 6  # one box each, no two on one spot
    assert all(pos[r][0] == d for r, d in depth.items())  # leaves left, the final model right


def test_dag_layers_cycle_and_unknown_parent():
    with pytest.raises(ValueError, match="cycle"):
        dag_layers([PipelineNode("a", "a", "", None, ["b"]), PipelineNode("b", "b", "", None, ["a"])])
    # a parent outside the list (e.g. a lineage cut at the seeds) is ignored
    assert dag_layers([PipelineNode("a", "a", "sft(all)", 1.0, ["elsewhere"])]) == {"a": 0}


def test_pipeline_dag_png(tmp_path):
    out = pipeline_dag(lineage(), tmp_path / "dag.png", title="ties(sft(ties(spec_arith, spec_facts), all), spec_arith)")
    img = assert_png(out)
    assert img.shape[1] > img.shape[0]  # five layers drawn left to right
    assert_png(pipeline_dag([PipelineNode("x", "base", "", None, [])], tmp_path / "one.png"), min_px=250)
    with pytest.raises(ValueError):
        pipeline_dag([], tmp_path / "none.png")
    with pytest.raises(ValueError, match="direction"):
        pipeline_dag(lineage(), tmp_path / "x.png", direction="up")


def _segments(column) -> list[tuple[int, int]]:
    """(start, end) of the runs of non-white pixels down an image column."""
    ink = (column[:, :3] < 0.97).any(axis=1)
    runs, start = [], None
    for y, inked in enumerate(ink):
        if inked and start is None:
            start = y
        elif not inked and start is not None:
            runs.append((start, y))
            start = None
    return runs + ([(start, len(ink))] if start is not None else [])


def test_the_ui_drawing_reads_at_its_own_size_and_its_arrows_meet_the_boxes(tmp_path):
    """As the MLflow UI shows a model's drawing (exploration/presenting.py): top to bottom, narrow
    enough for the ~500 px artifact pane at its own size (12.5 px text); an arrow runs from its
    input's box into its output's, its head on the output's edge."""
    img = assert_png(pipeline_dag(lineage(), tmp_path / "down.png", dpi=100, direction="down", fontsize=9))
    assert img.shape[0] > img.shape[1] and img.shape[1] <= 480, img.shape  # five layers, two boxes wide at most
    chain = [PipelineNode("a", "base", "", 0.0, []), PipelineNode("b", "m1", "sft(all, lr=0.003)", 1.0, ["a"])]
    img = mpimg.imread(pipeline_dag(chain, tmp_path / "chain.png", dpi=100, direction="down", fontsize=9))
    centre = img.shape[1] // 2
    top, bottom = _segments(img[:, centre])[-1]  # base's box, the arrow and m1's box: one stroke of ink
    assert bottom - top > 2 * 45 + 40, (top, bottom)  # two boxes (three lines of text each) and the gap between them
    orange = (img[top:bottom, centre, 0] > 0.7) & (img[top:bottom, centre, 2] < 0.2)  # the final model's outline (#D55E00)
    box_top = top + int(orange.argmax())
    head = img[box_top - 7, centre - 10 : centre + 11, :3].max(axis=1) < 0.4  # 7 px above m1's box: the arrowhead, dark
    assert head.sum() >= 5, head  # wider than a line: a head


# --------------------------------------------------------------------------- scaling curves


def test_scaling_curves_png(tmp_path):
    pts = [ScalingPoint(s, x, base + 0.05 * x) for s, base in (("top-1", 1.5), ("top-2", 1.3)) for x in (1, 2, 4, 6)]
    out = scaling_curves(pts, tmp_path / "scale.png", xlabel="data factor", baselines={"fully fine-tuned": 1.6, "spec": 1.0})
    assert_png(out)


def test_scaling_curves_model_size_and_empty(tmp_path):
    pts = [ScalingPoint("top-1", x, s) for x, s in ((135e6, 0.4), (360e6, 0.5), (1.7e9, 0.7))]
    assert_png(scaling_curves(pts, tmp_path / "size.png", xlabel="parameters"))
    assert_png(scaling_curves([], tmp_path / "empty.png"))
