"""Hyper-parameter search with Optuna, without MLflow.

The thesis tuned learning rate, batch size and epochs on 10 % of the training data, then
trained the full k-fold with the best values. Here a trial trains one model (``train_fold``)
on a stratified (grouped) holdout split of a stratified subset and reports the validation
metric after every epoch, so a pruner can stop hopeless trials early.

Modules, one concept each: :mod:`.config` (``SearchConfig``), :mod:`.space` (what is
searched), :mod:`.data` (the holdout split), :mod:`.study` (sampler, pruner, opening a
study), :mod:`.objective` (one trial), :mod:`.report` (counts, table, figures). How several
workers share one study (storages, the worker loop and its budget, trials of dead workers,
scratch folders) is the scale-out machinery of :mod:`isic_tracking.scaleout`. The names below
are re-exported, lazily (PEP 562), so ``from isic_tracking.train.search import ...`` keeps
working and importing :mod:`.config` alone (the command-line help) does not load torch or
Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_WHERE = {
    "PRUNERS": "isic_tracking.train.search.config",
    "RUN_CONTROL_FIELDS": "isic_tracking.train.search.config",
    "SearchConfig": "isic_tracking.train.search.config",
    "SearchData": "isic_tracking.train.search.data",
    "SearchObjective": "isic_tracking.train.search.objective",
    "SearchSpace": "isic_tracking.train.search.space",
    "TrialHooks": "isic_tracking.train.search.objective",
    "TrialOutcome": "isic_tracking.train.search.objective",
    "best_trial": "isic_tracking.train.search.report",
    "default_study_name": "isic_tracking.train.search.config",
    "epochs_spent": "isic_tracking.train.search.report",
    "load_search_data": "isic_tracking.train.search.data",
    "make_pruner": "isic_tracking.train.search.study",
    "make_sampler": "isic_tracking.train.search.study",
    "open_study": "isic_tracking.train.search.study",
    "parse_batch_sizes": "isic_tracking.train.search.space",
    "state_counts": "isic_tracking.train.search.report",
    "study_figures": "isic_tracking.train.search.report",
    "trials_table": "isic_tracking.train.search.report",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
