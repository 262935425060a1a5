"""tracking/outage.py on a real sqlite MLflow store; the failures are injected in a client
subclass (a real database outage behind ``mlflow server`` is in tests/e2e/test_scaleout_postgres.py).
"""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)
from mlflow.tracking import MlflowClient

from isic_tracking.tracking import tag
from isic_tracking.tracking.outage import create_run_riding_outage, transient


def _unavailable() -> MlflowException:
    return MlflowException("database refused the connection", error_code=TEMPORARILY_UNAVAILABLE)


class _Flaky(MlflowClient):
    """A client whose first ``fail`` create_run calls fail with a 503: before the store sees
    them (``commit=False``) or after it committed the run (``commit=True``, the answer lost)."""

    def __init__(self, uri: str, fail: int, commit: bool) -> None:
        super().__init__(tracking_uri=uri)
        self.fail, self.commit, self.attempts = fail, commit, 0

    def create_run(self, *args, **kwargs):  # type: ignore[override]
        self.attempts += 1
        if self.attempts > self.fail:
            return super().create_run(*args, **kwargs)
        if self.commit:
            super().create_run(*args, **kwargs)
        raise _unavailable()


def _runs_named(client: MlflowClient, exp: str, name: str) -> list:
    return [r for r in client.search_runs([exp]) if r.info.run_name == name]


def test_transient_means_a_5xx_answer() -> None:
    assert transient(_unavailable())
    assert transient(MlflowException("boom", error_code=INTERNAL_ERROR))
    assert not transient(MlflowException("no such run", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not transient(MlflowException("bad tag", error_code=BAD_REQUEST))
    assert not transient(ConnectionError("refused"))


def test_a_refused_create_is_retried_until_the_store_answers(mlflow_tracking: str) -> None:
    client = _Flaky(mlflow_tracking, fail=3, commit=False)
    exp = client.get_experiment_by_name("tests").experiment_id
    run = create_run_riding_outage(client, exp, "trial-0", {"a": "1"}, pause_s=0.0)
    assert client.attempts == 4
    assert [r.info.run_id for r in _runs_named(client, exp, "trial-0")] == [run.info.run_id]
    assert run.data.tags["a"] == "1"
    assert run.data.tags[tag.CREATE_TOKEN]


def test_a_run_committed_before_its_answer_was_lost_is_reused_not_doubled(
    mlflow_tracking: str,
) -> None:
    client = _Flaky(mlflow_tracking, fail=1, commit=True)
    exp = client.get_experiment_by_name("tests").experiment_id
    run = create_run_riding_outage(client, exp, "trial-1", pause_s=0.0)
    assert client.attempts == 1  # the lookup found the committed run: no second create
    assert [r.info.run_id for r in _runs_named(client, exp, "trial-1")] == [run.info.run_id]


def test_two_creations_get_two_runs(mlflow_tracking: str) -> None:
    """The token tells a retried creation from a new one: equal names and tags still make
    separate runs."""
    client = _Flaky(mlflow_tracking, fail=0, commit=False)
    exp = client.get_experiment_by_name("tests").experiment_id
    a = create_run_riding_outage(client, exp, "same", {"k": "v"}, pause_s=0.0)
    b = create_run_riding_outage(client, exp, "same", {"k": "v"}, pause_s=0.0)
    assert a.info.run_id != b.info.run_id
    assert len(_runs_named(client, exp, "same")) == 2


def test_an_outage_longer_than_the_window_raises(mlflow_tracking: str) -> None:
    client = _Flaky(mlflow_tracking, fail=10**6, commit=False)
    exp = client.get_experiment_by_name("tests").experiment_id
    with pytest.raises(MlflowException, match="refused"):
        create_run_riding_outage(client, exp, "never", outage_s=0.0, pause_s=0.0)
    assert client.attempts == 1
    assert not _runs_named(client, exp, "never")


def test_a_permanent_error_is_raised_at_once(mlflow_tracking: str) -> None:
    client = _Flaky(mlflow_tracking, fail=0, commit=False)
    with pytest.raises(MlflowException) as err:
        create_run_riding_outage(client, "987654", "orphan", outage_s=3600.0, pause_s=0.0)
    assert not transient(err.value)
    assert client.attempts == 1
