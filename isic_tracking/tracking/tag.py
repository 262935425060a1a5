"""The run tags this project writes: one name for each, so a search filter and the code
that sets the tag can never drift apart. Values are strings (MLflow tags are)."""

from __future__ import annotations

STAGE = "isic.stage"  # which entry point made the run: train, fold, search, filters, ...
STAGE_KEY = "isic.stage_key"  # pipeline reuse key (entry point + parameters)
PROFILE = "isic.profile"
REPORT = "isic.report"  # artifact path of the run's self-contained HTML report
COMPLETE = "isic.complete"  # "true" once a stage's run has every result it promises
ERROR = "isic.error"
ADAPTED = "isic.adapted"  # a stage used less than asked (e.g. images per class) and why
RESUMED_INTO = "isic.resumed_into"  # a resumed run points at the run it continued
CREATE_TOKEN = "isic.create_token"  # a run's creation id: a retried create finds the committed run
CLAIMED_AT = (
    "isic.claimed_at"  # a worker's claim to be the stage's parent run (scaleout/parent_election.py)
)

CONFIG_HASH = "isic.config_hash"
GROUPING = "isic.grouping"  # "grouped" (patient/lesion) or "stratified"
SPLIT_DIGEST = "isic.split_digest"
FOLD = "isic.fold"
FOLD_STATUS = "isic.fold_status"
FAILED_FOLDS = "isic.failed_folds"
BEST_EPOCH = "isic.best_epoch"
REGISTERED_MODEL = "isic.registered_model"
CHAMPION_VERSION = "isic.champion_version"
MONITOR = "isic.monitor"  # model version: the metric that picks the champion
MONITOR_VALUE = "isic.monitor_value"  # model version: that metric's value for its fold
INIT_KIND = "isic.init.kind"  # model version: random | file | cache | model
INIT_SOURCE = "isic.init.source"  # model version: seed, file, cache file name or model URI
INIT_SHA256 = "isic.init.sha256"  # model version: sha256 of the init weights ("" for random)
BASE = "isic.base"  # analysis run: the model the analysed one was fine-tuned from
TEST_SET = "isic.test_set"  # prepare / evaluate: how the test set was made, in words
TEST_KIND = "isic.test_kind"  # prepare: dataset | source | holdout | none
TEST_RUN = "isic.test_run"  # model version: the evaluate run that scored it on the test set
TEST_SKIPPED = "isic.test_skipped"  # evaluate: why there was nothing to evaluate

STUDY_NAME = "isic.study_name"
STORAGE = "isic.storage"
DIRECTION = "isic.direction"
N_TRIALS = "isic.n_trials"
N_WORKERS = "isic.n_workers"
BEST_TRIAL = "isic.best_trial"

MODEL_URI = "isic.model_uri"
TRAIN_RUN = "isic.train_run"
FILTERS_RUN = "isic.filters_run"
SHORTCUT_CHECK = "isic.shortcut_check"  # filters: "pass"/"fail", planted shortcut found (6b)
FV_RUN = "isic.fv_run"
SANITY_VISUALIZATIONS = "isic.sanity.visualizations"
COLOUR_CHECK = "isic.colour_check"  # visualize: "pass" / "fail", class-logit colours vs lesions
SANITY_VERDICT = "isic.sanity.verdict"  # visualizations vs noise: closer at every / some / no layer
SANITY_VERDICT_LAYERS = (
    "isic.sanity.verdict_layers"  # "<layer>: closer | not closer | undecided; ..."
)
#: each pictured layer's top filters at their own layer: "<layer>: closer (closer at 3/8 layers); ..."
SANITY_PICTURED_LAYER_VERDICTS = "isic.sanity.pictured_layer_verdicts"
COMPARABLE = "isic.comparable"
COMPARE_WARNINGS = "isic.compare_warnings"


# The analysed model, on every analysis run (``load_model``'s tags): where it came from.
MODEL = "model.uri"  # the URI the stage was given
MODEL_NAME = "model.name"
MODEL_VERSION = "model.version"
MODEL_ID = "model.model_id"  # MLflow's LoggedModel id
MODEL_SOURCE_RUN = "model.source_run_id"  # the fold run that logged it
MODEL_TRAIN_RUN = "model.train_run_id"  # its train (parent) run
MODEL_TASK = "model.task"
MODEL_BASE = "model.base"  # a base model (its recorded init): what it is, in words


def stage_of_pipeline(entry_point: str) -> str:
    """The pipeline run's tag naming the run of one of its stages: ``stage.<entry point>``."""
    return f"{STAGE_PREFIX}{entry_point}"


STAGE_PREFIX = "stage."


def dataset_digest(context: str) -> str:
    """Tag holding the digest of the dataset input logged under ``context`` (training, search)."""
    return f"isic.dataset.{context}.digest"


def best_param(name: str) -> str:
    """Tag of a search run holding the best trial's value of ``name`` (lr, batch_size, epochs)."""
    return f"isic.best.{name}"
