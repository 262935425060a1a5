"""``train``: k-fold training of one configuration, logged as a parent run with one child run
per fold (the runner :mod:`.runner`); the fold summaries that ``compare`` and the ``main``
report read back are :mod:`.runner_results`. The training itself is :mod:`isic_tracking.train`."""
