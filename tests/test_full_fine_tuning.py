"""The fully fine-tuned baseline's grid: a fair baseline is not an under-trained one."""

from lamdagent.experiments.baselines import longer_training_hint, widening


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


def test_a_grid_that_trains_far_longer_than_the_search_may_is_said_with_the_choice_to_offer():
    hint = longer_training_hint(24.0, 3)
    assert hint.startswith("full fine-tuning chose 24 epochs, 8 times the longest fine-tune the search may make (3)")
    assert hint.endswith("sft.epochs=[3,24]")
    assert longer_training_hint(24.0, [3, 12]).endswith("2 times the longest fine-tune the search may make (12): the search reaches "
                                                         "that length only by chaining fine-tunes; to offer it in one action, list it: sft.epochs=[3,12,24]")
    assert longer_training_hint(5.0, 4) is None  # within twice the search's length: nothing to say
    assert longer_training_hint(2.0, 4) is None  # the grid chose shorter (relay): longer choices would not help
    assert longer_training_hint(24.0, [3, 12, 24]) is None  # already offered
