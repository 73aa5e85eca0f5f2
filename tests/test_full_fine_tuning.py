"""The fully fine-tuned baseline's grid: a fair baseline is not an under-trained one."""

from lamdagent.experiments.baselines import longer_training_hint, unsettled, widening


def test_full_fine_tuning_widens_each_learning_rate_only_while_its_best_trial_is_at_an_edge():
    grid = [(2.5, 1e-3, 4.0), (2.9, 1e-3, 16.0), (2.9, 3e-4, 16.0), (1.9, 3e-4, 4.0)]
    assert widening(grid) == [(1e-3, 32.0), (3e-4, 32.0)]  # each rate at its own edge
    assert widening([*grid, (2.7, 1e-3, 32.0)]) == [(3e-4, 32.0)]  # longer got worse at 1e-3: that rate has found its best
    assert widening([*grid, (3.3, 1e-3, 32.0), (2.8, 3e-4, 32.0)]) == [(1e-3, 64.0)]
    # the rate that lost at the first lengths but still rises at its edge is trained longer too (ledger: 7e-4 rising past 12 epochs)
    ledger = [(2.08, 7e-4, 3.0), (2.62, 7e-4, 6.0), (3.10, 7e-4, 12.0), (1.92, 2.5e-3, 3.0), (2.14, 2.5e-3, 6.0), (3.31, 2.5e-3, 12.0)]
    assert widening(ledger) == [(7e-4, 24.0), (2.5e-3, 24.0)]
    assert widening([*ledger, (2.54, 2.5e-3, 24.0)]) == [(7e-4, 24.0)]
    assert widening([(2.0, 1e-3, 4.0), (3.0, 1e-3, 8.0), (None, 1e-3, 16.0)]) == []  # a failed trial is no best
    assert widening([(3.0, 1e-3, 4.0), (2.0, 1e-3, 8.0), (2.5, 3e-4, 16.0)]) == [(1e-3, 2.0), (3e-4, 32.0)]  # shortest was best: half
    assert widening([(3.0, 1e-3, 4.0), (2.0, 1e-3, 8.0), (3.1, 1e-3, 2.0)]) == [(1e-3, 1.0)]
    assert widening([(3.0, 1e-3, 4.0), (2.0, 1e-3, 8.0), (2.9, 1e-3, 2.0)]) == []  # shorter got worse
    assert widening([(None, 1e-3, 4.0)]) == []


def test_a_grid_that_trains_far_longer_than_the_search_may_is_said_with_the_choice_to_offer():
    hint = longer_training_hint(24.0, 3)
    assert hint.startswith("full fine-tuning chose 24 epochs, 8 times the longest fine-tune the search may make (3)")
    assert hint.endswith("sft.epochs=[3,24]")
    assert longer_training_hint(24.0, [3, 12]).endswith("2 times the longest fine-tune the search may make (12): the search reaches "
                                                         "that length only by chaining fine-tunes; to offer it in one action, list it: sft.epochs=[3,12,24]")
    assert longer_training_hint(5.0, 4) is None  # within twice the search's length: nothing to say
    assert longer_training_hint(2.0, 4) is None  # the grid chose shorter (relay): longer choices would not help
    assert longer_training_hint(24.0, [3, 12, 24]) is None  # already offered


def test_a_chosen_trial_still_at_its_own_rates_edge_is_said_with_that_rates_edge():
    # 7e-4 was widened to 48 epochs; the chosen 2.5e-3 still sits at its own longest edge (12), below the grid's longest
    grid = [(3.1, 7e-4, 12.0), (3.5, 7e-4, 24.0), (3.4, 7e-4, 48.0), (2.0, 2.5e-3, 6.0), (3.6, 2.5e-3, 12.0)]
    assert unsettled(grid, 4, 2).startswith("full fine-tuning's best trial still trained longest (12 epochs, after 2 widenings)")
    assert unsettled(grid, 1, 2) is None  # 24 epochs lies inside 7e-4's trials
    shortest = [(3.0, 1e-3, 2.0), (2.5, 1e-3, 4.0), (1.0, 3e-4, 1.0), (1.2, 3e-4, 8.0)]
    assert unsettled(shortest, 0, 2).startswith("full fine-tuning's best trial still trained shortest (2 epochs")
