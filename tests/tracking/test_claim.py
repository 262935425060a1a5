"""Parent-run election: workers that claim together all pick the same, earliest claim."""

from __future__ import annotations

import os
import threading

from mlflow.tracking import MlflowClient

from isic_tracking.tracking import claim, tag

FILTER = f"tags.`{tag.STAGE}` = 'search' and tags.`{tag.STUDY_NAME}` = 's'"


def _candidate(exp: str, stage: str = "search") -> str:
    tags = {tag.STAGE: stage, tag.STUDY_NAME: "s"}
    return MlflowClient().create_run(exp, tags=tags).info.run_id


def test_concurrent_claimants_agree_on_the_earliest_claim(mlflow_tracking, monkeypatch) -> None:
    monkeypatch.setattr(claim, "CLAIM_WAIT_S", 0.5)
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    candidates = [_candidate(exp) for _ in range(3)]
    _candidate(exp, stage="search-worker")  # not a candidate (filtered out)
    picked: dict[str, str] = {}

    def run(c: str) -> None:
        picked[c] = claim.elect_parent(c, exp, FILTER)

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
    monkeypatch.setattr(claim, "CLAIM_WAIT_S", 0.1)
    exp = os.environ["MLFLOW_EXPERIMENT_ID"]
    first, late, done = _candidate(exp), _candidate(exp), _candidate(exp)
    assert claim.elect_parent(first, exp, FILTER) == first
    MlflowClient().set_tag(done, tag.CLAIMED_AT, "0")  # older, but no longer eligible
    ineligible = {done}
    assert claim.elect_parent(late, exp, FILTER, lambda r: r.info.run_id not in ineligible) == first
