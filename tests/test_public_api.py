import driftloop


def test_public_names_are_pinned():
    # growing the public API is a conscious act: change this list on purpose
    assert sorted(driftloop.__all__) == [
        "DataReport", "DriftReport", "DriftloopError", "EvaluationReport", "Registry",
        "TrainResult", "__version__", "check_data", "drift", "evaluate", "train",
    ]
    for name in driftloop.__all__:
        assert getattr(driftloop, name) is not None


def test_train_and_evaluate_stay_callable_after_their_subpackages_are_imported():
    import driftloop.registry.registry as report
    import driftloop.train.launcher as launcher

    # `driftloop.train` / `driftloop.evaluate` are now bound to the subpackages ...
    assert callable(driftloop.train) and callable(driftloop.evaluate)
    # ... which stand for the public functions
    assert driftloop.train.function is launcher.train
    assert driftloop.evaluate.function is report.evaluate
