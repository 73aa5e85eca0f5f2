from lamdagent.space import ModelObject
from lamdagent.space.lineage import common_ancestor, depth


def _m(name, *parents):
    return ModelObject(name, f"run-{name}", f"m-{name}", f"fp-{name}", name, "x", parents=list(parents))


def test_common_ancestor_is_the_deepest_shared_model():
    base = _m("base")
    spec_a, spec_b = _m("spec_a", base), _m("spec_b", base)
    m1 = _m("m1", spec_a)  # sft(spec_a, all)
    m2 = _m("m2", m1)
    assert common_ancestor([spec_a, spec_b]) is base
    assert common_ancestor([m1, spec_b]) is base
    assert common_ancestor([m2, m1]) is m1  # one descends from the other
    merged = _m("m3", m2, spec_b)
    assert common_ancestor([merged, _m("m4", m1)]) is m1
    assert depth(merged) == 4 and depth(base) == 0


def test_no_shared_ancestor():
    assert common_ancestor([_m("a"), _m("b")]) is None


def test_kinship_answers_as_related_for_every_pair_of_a_pool():
    from lamdagent.space.lineage import Kinship, related

    base = _m("base")
    spec_a, spec_b = _m("spec_a", base), _m("spec_b", base)
    m1 = _m("m1", spec_a)
    pool = [base, spec_a, spec_b, m1, _m("m2", m1, spec_b), _m("m3", m1), _m("other")]
    kin = Kinship()
    answers = {(a.name, b.name): kin.related(a, b) for a in pool for b in pool}
    assert answers == {(a.name, b.name): related(a, b) for a in pool for b in pool}
    assert answers[("m2", "spec_b")] and answers[("base", "m3")] and not answers[("spec_a", "spec_b")] and not answers[("other", "base")]
