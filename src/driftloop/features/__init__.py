"""The feature store: entities, feature views, point-in-time joins and the online table.

Feature views are declared in settings (``features:`` in driftloop.yaml), registered and
versioned in the store; historical retrieval joins them as of each training row's time, and
the online table serves their latest values to requests that carry only entity keys.
"""
