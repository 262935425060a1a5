"""Parent-run election: workers that claim together all pick the same, earliest claim."""

from __future__ import annotations

import os
import threading

from mlflow.tracking import MlflowClient

from isic_tracking.scaleout import parent_election
from isic_tracking.tracking import tag

FILTER = f"tags.`{tag.STAGE}` = 'search' and tags.`{tag.STUDY_NAME}` = 's'"


def _candidate(exp: str, stage: str = "search") -> str:
    tags = {tag.STAGE: stage, tag.STUDY_NAME: "s"}
    return MlflowClient().create_run(exp, tags=tags).info.run_id


def test_concurrent_claimants_agree_on_the_earliest_claim(mlflow_tracking, monkeypatch) -> None:
    monkeypatch.setattr(parent_election, "CLAIM_WAIT_S", 0.5)
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    candidates = [_candidate(exp) for _ in range(3)]
    _candidate(exp, stage="search-worker")  # not a candidate (filtered out)
    picked: dict[str, str] = {}

    def run(c: str) -> None:
        picked[c] = parent_election.elect_parent(c, exp, FILTER)

    threads = [threading.Thread(target=run, args=(c,)) for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(picked.values())) == 1  # every claimant agrees
    winner = picked[candidates[0]]
    stamps = {c: float(MlflowClient().get_run(c).data.tags[tag.CLAIMED_AT]) for c in candidates}
    assert winner == min(candidates, key=lambda c: (stamps[c], c))


def test_a_later_claimant_joins_the_earlier_claim(mlflow_tracking, monkeypatch) -> None:
    monkeypatch.setattr(parent_election, "CLAIM_WAIT_S", 0.1)
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    first, late, done = _candidate(exp), _candidate(exp), _candidate(exp)
    assert parent_election.elect_parent(first, exp, FILTER) == first
    MlflowClient().set_tag(done, tag.CLAIMED_AT, "0")  # older, but no longer eligible
    ineligible = {done}
    assert (
        parent_election.elect_parent(late, exp, FILTER, lambda r: r.info.run_id not in ineligible)
        == first
    )


def _watch_unclaimed(monkeypatch, exp: str, filter_string: str) -> list[list[str]]:
    """After every tag write of the client, the runs a plain parent lookup would settle on
    (matching ``filter_string``, no claim): the window a worker starting then would fall in."""
    seen: list[list[str]] = []

    def check() -> None:
        runs = MlflowClient().search_runs([exp], filter_string=filter_string)
        seen.append([r.info.run_id for r in runs if tag.CLAIMED_AT not in r.data.tags])

    for name in ("create_run", "set_tag", "log_batch"):
        original = getattr(MlflowClient, name)

        def write(self, *args, _original=original, **kwargs):
            out = _original(self, *args, **kwargs)
            check()
            return out

        monkeypatch.setattr(MlflowClient, name, write)
    return seen


def test_a_search_candidate_is_never_visible_unclaimed(mlflow_tracking, monkeypatch) -> None:
    import optuna

    from isic_tracking.stages.search import runner as search

    monkeypatch.setattr(parent_election, "CLAIM_WAIT_S", 0.05)
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    own = MlflowClient().create_run(exp).info.run_id  # the run `mlflow run` made
    monkeypatch.setenv("MLFLOW_RUN_ID", own)
    seen = _watch_unclaimed(monkeypatch, exp, search._parent_filter("s"))
    study = optuna.create_study(study_name="s")
    assert search._claim_parent(study, "s") == own
    assert seen and not any(seen), seen  # every write checked; none left a bare candidate
    assert search.find_parent_run(study, "s") == own  # found the ordinary way afterwards


def test_a_fold_worker_candidate_is_never_visible_unclaimed(mlflow_tracking, monkeypatch) -> None:
    from isic_tracking.config import TrainConfig
    from isic_tracking.stages.train import runner as training

    monkeypatch.setattr(parent_election, "CLAIM_WAIT_S", 0.05)
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    filter_string = f"tags.`{tag.STAGE}` = 'train' and tags.`{tag.CONFIG_HASH}` = 'h'"
    seen = _watch_unclaimed(monkeypatch, exp, filter_string)
    parent = training._claim_fold_parent(TrainConfig(), "h", None)
    assert seen and not any(seen), seen
    assert training.find_resumable_run("h", None) == parent
