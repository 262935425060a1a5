"""The ``evaluate`` stage: the registered model on the test set, with bootstrap intervals."""
