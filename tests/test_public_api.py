import driftloop


def test_public_names_are_pinned():
    # growing the public API is a conscious act: change this list on purpose
    assert sorted(driftloop.__all__) == [
        "DataReport", "DriftloopError", "Registry", "TrainResult", "__version__",
        "check_data", "train",
    ]
    for name in driftloop.__all__:
        assert getattr(driftloop, name) is not None
