"""One parent run when several workers start the same stage at the same moment.

Workers on separate machines (search workers on one study, ``train -P fold=k`` workers on one
k-fold) each look for the stage's parent run and, finding none, make their own. Started
together, they all find none. So each one that found none *claims*: it stamps its candidate
run with the claim time (tag ``isic.claimed_at``), waits :data:`CLAIM_WAIT_S` so that every
claim made about the same time is visible, and takes the earliest claim. Every claimant sees
the same earliest one (a claim it cannot see yet was stamped after its own), so they all
agree; a worker that starts later finds that parent the ordinary way. Assumes the machines'
clocks agree to well under :data:`CLAIM_WAIT_S` (NTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from isic_tracking.tracking import tag

#: Seconds a claimant waits before reading the claims (longer than one tracking call takes).
CLAIM_WAIT_S = 2.0


def elect_parent(
    candidate: str,
    experiment: str,
    filter_string: str,
    eligible: Callable[[Run], bool] = lambda run: True,
) -> str:
    """The parent run id every claimant agrees on.

    Args:
        candidate: this worker's own run, already carrying the tags ``filter_string`` selects.
        experiment: the experiment id of the runs.
        filter_string: MLflow filter selecting the candidates of the same stage (e.g. stage
            and study name, or stage and config hash).
        eligible: drops candidates that cannot be a parent (e.g. a finished training).
    """
    client = MlflowClient()
    client.set_tag(candidate, tag.CLAIMED_AT, f"{time.time():.6f}")
    time.sleep(CLAIM_WAIT_S)
    runs = client.search_runs([experiment], filter_string=filter_string, max_results=200)
    claims = [
        (float(r.data.tags[tag.CLAIMED_AT]), r.info.run_id)
        for r in runs
        if tag.CLAIMED_AT in r.data.tags and (r.info.run_id == candidate or eligible(r))
    ]
    return min(claims)[1] if claims else candidate
