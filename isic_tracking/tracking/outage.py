"""Creating a run through a tracking server whose database is restarting.

MLflow's client retries a request the server answered 503 (``TEMPORARILY_UNAVAILABLE``, what
``mlflow server`` says while its database refuses connections) only when repeating it is
harmless. Since MLflow 3.18 ``CreateRun`` is not among those requests: the server may have
committed the run before it answered 503, and a blind retry would leave a second run. So a
search or fold worker that starts a run during a database restart would die at once, though
every storage call around it (:mod:`isic_tracking.scaleout.reconnect`) rides the outage out.

:func:`create_run_riding_outage` makes the retry safe instead: each run carries a token tag
made before the first attempt; after a transient failure it looks the token up and uses the
run the failed attempt committed, if there is one, before it tries again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from isic_tracking.log import get_logger
from isic_tracking.tracking import tag

log = get_logger(__name__)

#: HTTP statuses of a tracking server whose database is (re)starting or briefly unreachable.
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
#: How long one run creation keeps trying by default (the storage's own reconnect window).
OUTAGE_S = 120.0
#: Seconds between attempts.
RETRY_PAUSE_S = 1.0


def transient(err: BaseException) -> bool:
    """Whether ``err`` is a tracking server's "try again": a 5xx answer to an MLflow call."""
    if not isinstance(err, MlflowException):
        return False
    return err.get_http_status_code() in TRANSIENT_STATUS


def create_run_riding_outage(
    client: MlflowClient,
    experiment_id: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    outage_s: float = OUTAGE_S,
    pause_s: float = RETRY_PAUSE_S,
) -> Run:
    """``client.create_run`` that retries a transient failure for up to ``outage_s`` seconds
    without ever leaving two runs: a run the server committed before it failed is found by
    its :data:`~isic_tracking.tracking.tag.CREATE_TOKEN` tag and returned.

    Raises the last error when the outage outlasts ``outage_s`` or the error is not transient
    (a missing experiment, a bad tag: retrying would not help).
    """
    token = uuid.uuid4().hex
    all_tags = {**(tags or {}), tag.CREATE_TOKEN: token}
    deadline = time.monotonic() + outage_s
    retrying = False
    while True:
        try:
            committed = _run_with_token(client, experiment_id, token) if retrying else None
            if committed is not None:
                return committed
            return client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        except MlflowException as err:
            if not transient(err) or time.monotonic() > deadline:
                raise
            if not retrying:
                first = (str(err).splitlines() or [""])[0][:300]
                log.warning(
                    f"mlflow: creating run {run_name or ''!r}: the tracking server is "
                    f"unavailable, retrying for up to {outage_s:.0f} s: {first}"
                )
                retrying = True
            time.sleep(pause_s)


def _run_with_token(client: MlflowClient, experiment_id: str, token: str) -> Run | None:
    """The run an earlier attempt created, if it was committed."""
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{tag.CREATE_TOKEN}` = '{token}'", max_results=1
    )
    return found[0] if found else None
