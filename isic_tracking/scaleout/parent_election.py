"""One parent run when several workers start the same stage at the same moment.

Workers on separate machines (search workers on one study, ``train -P fold=k`` workers on one
k-fold) each look for the stage's parent run and, finding none, make their own. Started
together, they all find none. So each one that found none *claims*: it stamps its candidate
run with the claim time (tag ``isic.claimed_at``), waits :data:`CLAIM_WAIT_S` so that every
claim made about the same time is visible, and takes the earliest claim. Every claimant sees
the same earliest one (a claim it cannot see yet was stamped after its own), so they all
agree; a worker that starts later finds that parent the ordinary way. Assumes the machines'
clocks agree to well under :data:`CLAIM_WAIT_S` (NTP).

The stage's tags (what the parent lookups filter on) and the claim are written in one
``log_batch`` (one transaction): a run that matches a lookup is already a claim. Written one
after the other, a worker starting a moment later could see the tags without the claim, take
that run for an ordinary, settled parent and attach its trials there while the election
picked another run (seen once in CI: one study's trial runs under two parents).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from mlflow.entities import Run, RunTag
from mlflow.tracking import MlflowClient

from isic_tracking.log import get_logger
from isic_tracking.tracking import tag

log = get_logger(__name__)

#: Seconds a claimant waits before reading the claims (longer than one tracking call takes).
CLAIM_WAIT_S = 2.0


def elect_parent(
    candidate: str,
    experiment: str,
    filter_string: str,
    eligible: Callable[[Run], bool] = lambda run: True,
    tags: Mapping[str, str] | None = None,
) -> str:
    """The parent run id every claimant agrees on.

    Args:
        candidate: this worker's own run.
        experiment: the experiment id of the runs.
        filter_string: MLflow filter selecting the candidates of the same stage (e.g. stage
            and study name, or stage and config hash).
        eligible: drops candidates that cannot be a parent (e.g. a finished training).
        tags: the tags ``filter_string`` selects on, written together with the claim; the
            candidate must not carry them before (see the module's docstring). None: it
            already does and nothing looks for unclaimed runs of that filter.
    """
    client = MlflowClient()
    stamped = time.time()
    stamp = {**(tags or {}), tag.CLAIMED_AT: f"{stamped:.6f}"}
    client.log_batch(candidate, tags=[RunTag(k, v) for k, v in stamp.items()])
    took = time.time() - stamped
    if took > CLAIM_WAIT_S / 2:  # others may have read the claims before this one landed
        log.warning(
            f"claim of run {candidate} took {took:.1f} s to write (election wait "
            f"{CLAIM_WAIT_S:.0f} s): workers started together may pick different parent runs; "
            "an overloaded tracking server? start the workers a few seconds apart"
        )
    time.sleep(CLAIM_WAIT_S)
    runs = client.search_runs([experiment], filter_string=filter_string, max_results=200)
    claims = [
        (float(r.data.tags[tag.CLAIMED_AT]), r.info.run_id)
        for r in runs
        if tag.CLAIMED_AT in r.data.tags and (r.info.run_id == candidate or eligible(r))
    ]
    return min(claims)[1] if claims else candidate
