"""The fully fine-tuned baseline's grid: a fair baseline is not an under-trained one."""

from lamdagent.experiments.baselines import widening


def test_full_fine_tuning_widens_its_grid_only_while_its_best_trial_is_at_an_edge():
    grid = [(2.5, 1e-3, 4.0), (2.9, 1e-3, 16.0), (2.9, 3e-4, 16.0), (1.9, 3e-4, 4.0)]
    assert widening(grid) == (1e-3, 32.0)  # the first of equal bests, at its own learning rate
    assert widening([*grid, (2.7, 1e-3, 32.0)]) is None  # longer got worse: the grid has found its best
    assert widening([*grid, (3.3, 1e-3, 32.0)]) == (1e-3, 64.0)
    assert widening([(2.0, 1e-3, 4.0), (3.0, 1e-3, 8.0), (None, 1e-3, 16.0)]) is None  # a failed trial is no best
    assert widening([(3.0, 1e-3, 4.0), (2.0, 1e-3, 8.0), (2.5, 3e-4, 16.0)]) == (1e-3, 2.0)  # shortest was best: half, at its rate
    assert widening([(3.0, 1e-3, 4.0), (2.0, 1e-3, 8.0), (3.1, 1e-3, 2.0)]) == (1e-3, 1.0)
    assert widening([(3.0, 1e-3, 4.0), (2.0, 1e-3, 8.0), (2.9, 1e-3, 2.0)]) is None  # shorter got worse
    assert widening([(None, 1e-3, 4.0)]) is None
