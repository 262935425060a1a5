"""Hyper-parameter search with Optuna, without MLflow.

The thesis tuned learning rate, batch size and epochs on 10 % of the training data, then
trained the full k-fold with the best values. Here a trial trains one model (``train_fold``)
on a stratified (grouped) holdout split of a stratified subset and reports the validation
metric after every epoch, so a pruner can stop hopeless trials early.

Modules, one concept each: :mod:`.config` (``SearchConfig``), :mod:`.space` (what is
searched), :mod:`.data` (the holdout split), :mod:`.storage` (Optuna storage URLs),
:mod:`.study` (sampler, pruner, opening a study), :mod:`.objective` (one trial),
:mod:`.workers` (the worker loop and the budget), :mod:`.liveness` and :mod:`.recovery`
(trials of dead workers), :mod:`.report` (counts, table, figures). The names below are
re-exported so ``from isic_tracking.train.search import ...`` keeps working.
"""

from isic_tracking.train.search.config import (
    PRUNERS,
    RUN_CONTROL_FIELDS,
    SearchConfig,
    default_study_name,
)
from isic_tracking.train.search.data import SearchData, load_search_data
from isic_tracking.train.search.objective import SearchObjective, TrialHooks, TrialOutcome
from isic_tracking.train.search.recovery import fail_dead_local_trials, retry_of_trial
from isic_tracking.train.search.report import (
    best_trial,
    epochs_spent,
    state_counts,
    study_figures,
    trials_table,
)
from isic_tracking.train.search.space import SearchSpace, parse_batch_sizes
from isic_tracking.train.search.storage import is_sqlite, journal_path, make_storage, mask_url
from isic_tracking.train.search.study import make_pruner, make_sampler, open_study
from isic_tracking.train.search.workers import (
    CATCH,
    budget_left,
    claim_lock_path,
    retried_numbers,
    run_worker,
    worker_seed,
)

__all__ = [
    "CATCH",
    "PRUNERS",
    "RUN_CONTROL_FIELDS",
    "SearchConfig",
    "SearchData",
    "SearchObjective",
    "SearchSpace",
    "TrialHooks",
    "TrialOutcome",
    "best_trial",
    "budget_left",
    "claim_lock_path",
    "default_study_name",
    "epochs_spent",
    "fail_dead_local_trials",
    "is_sqlite",
    "journal_path",
    "load_search_data",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "mask_url",
    "open_study",
    "parse_batch_sizes",
    "retried_numbers",
    "retry_of_trial",
    "run_worker",
    "state_counts",
    "study_figures",
    "trials_table",
    "worker_seed",
]
