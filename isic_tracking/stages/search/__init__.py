"""``search``: the Optuna hyperparameter search as one parent run (the runner :mod:`.runner`),
its trials as child runs (:mod:`.runner_trials`) and its worker processes
(:mod:`.runner_workers`). The search machinery itself is :mod:`isic_tracking.train.search`."""
