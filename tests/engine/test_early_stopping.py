from dlx.engine.early_stopping import EarlyStopping


def test_patience_counts_checks_without_improvement():
    stopper = EarlyStopping("min", patience=2, min_delta=0.05)
    decisions = [stopper.update(score) for score in [1.0, 0.9, 0.88, 0.87, 0.5]]
    assert decisions == [False, False, False, True, False]  # 0.88 and 0.87 are within min_delta of 0.9


def test_max_mode_and_state_round_trip():
    stopper = EarlyStopping("max", patience=3)
    for score in [0.1, 0.3, 0.2]:
        stopper.update(score)
    copy = EarlyStopping("max", patience=3)
    copy.load_state_dict(stopper.state_dict())
    assert copy.best == 0.3 and copy.checks_without_improvement == 1
    assert [copy.update(s) for s in [0.25, 0.29]] == [False, True]


def test_no_patience_never_stops():
    stopper = EarlyStopping("min", patience=None)
    assert not any(stopper.update(1.0) for _ in range(10))


def test_nan_scores_count_as_no_improvement_and_never_become_best():
    stopper = EarlyStopping("min", patience=2)
    assert [stopper.update(s) for s in [float("nan"), 0.5, float("nan"), float("nan")]] == [
        False,
        False,
        False,
        True,
    ]
    assert stopper.best == 0.5
