import numpy as np

from domix.data.domains import DomainSet
from domix.run import _targets


def test_macro_target_weighs_every_evaluation_domain_the_same():
    # 8 validation documents: evaluation domain "a" has 6 (all in cluster c0), "b" has 2 (c1, c2)
    evaluated = DomainSet.from_labels("original", "fp", ["a"] * 6 + ["b"] * 2 + ["a"])
    train = DomainSet.from_labels("regrouped", "fp", ["c0"] * 6 + ["c1", "c2", "c0"])
    val = np.array([True] * 8 + [False])  # the last document is a training one
    docs, macro = _targets(train, evaluated, val)
    assert np.allclose(docs, [6 / 8, 1 / 8, 1 / 8])
    assert np.allclose(macro, [(1 + 0) / 2, (0 + 0.5) / 2, (0 + 0.5) / 2])
    # training on the evaluation domains themselves: macro pbar is uniform, the documents' is not
    docs, macro = _targets(evaluated, evaluated, val)
    assert np.allclose(docs, [0.75, 0.25]) and np.allclose(macro, 0.5)
