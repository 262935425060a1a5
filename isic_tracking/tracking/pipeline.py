"""The ``main`` pipeline: each stage an ``mlflow run`` child of one pipeline run, chained by
run id, reusing a stage whose identical run (entry point, parameters, code version) finished.

Follows MLflow's ``examples/multistep_workflow``; unlike it, stages are nested under the
pipeline run (``mlflow.parentRunId``) so the UI shows one tree per pipeline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import ExecutionException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import context_tags, get_run

ENTRY_POINT_TAG = "mlflow.project.entryPoint"
GIT_COMMIT_TAG = "mlflow.source.git.commit"


def _as_param(v: Any) -> str:
    return "" if v is None else str(v)


def stage_key(entry_point: str, parameters: dict[str, Any]) -> str:
    """Hash of an entry point and its parameters as the pipeline passed them.

    Compared instead of the run's logged params: MLflow drops empty values and the stage
    logs resolved ones, so logged params do not round-trip the call.
    """
    text = json.dumps([entry_point, {k: _as_param(v) for k, v in sorted(parameters.items())}])
    return hashlib.sha1(text.encode()).hexdigest()


def find_finished_stage(
    experiment_id: str, entry_point: str, parameters: dict[str, Any], git_commit: str | None
) -> Run | None:
    """The newest FINISHED run of ``entry_point`` with these parameters and commit, if any."""
    key = stage_key(entry_point, parameters)
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{tag.STAGE_KEY}` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    for run in runs:
        if git_commit and run.data.tags.get(GIT_COMMIT_TAG) != git_commit:
            continue
        return run
    return None


def effective_run(run: Run) -> Run:
    """A train run that resumed an earlier run points at it (tag ``isic.resumed_into``)."""
    target = run.data.tags.get(tag.RESUMED_INTO)
    return get_run(target) if target else run


class StageFailed(IsicInputError):
    """A stage's run failed; the message names the stage, its run and its error."""


def stage_error(run_id: str) -> str:
    """What a failed stage run says went wrong: its ``isic.error`` tag (set by the entry
    point's error handler), else a pointer to its output."""
    error = MlflowClient().get_run(run_id).data.tags.get(tag.ERROR)
    return error.strip().splitlines()[-1] if error else "see its output above"


@dataclass
class Pipeline:
    """Runs stages as children of the active pipeline run."""

    project_uri: str
    experiment_id: str
    parent_run_id: str
    git_commit: str | None
    force: bool = False
    env_manager: str = "local"
    stages: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (run id, reused)

    def run(self, entry_point: str, parameters: dict[str, Any], label: str | None = None) -> Run:
        """Reuse an identical finished run of ``entry_point`` or run it now (synchronously);
        ``label`` names it in :attr:`stages` and the parent's ``stage.<label>`` tag (default:
        the entry point; a study runs ``main`` once per architecture and task)."""
        label = label or entry_point
        params = {k: _as_param(v) for k, v in parameters.items()}
        if not self.force:
            found = find_finished_stage(self.experiment_id, entry_point, params, self.git_commit)
            if found is not None:
                print(f"[{label}] reusing finished run {found.info.run_id}")
                self._record(label, found.info.run_id, reused=True)
                return effective_run(found)
        client = MlflowClient()
        child = client.create_run(
            self.experiment_id,
            # a run handed to mlflow.projects.run by id does not get these tags from MLflow
            tags=context_tags(
                **{
                    MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                    "mlflow.runName": label,
                    ENTRY_POINT_TAG: entry_point,
                    MLFLOW_SOURCE_NAME: self.project_uri,
                    MLFLOW_SOURCE_TYPE: "PROJECT",
                    tag.STAGE_KEY: stage_key(entry_point, params),
                    **({GIT_COMMIT_TAG: self.git_commit} if self.git_commit else {}),
                }
            ),
        )
        print(f"[{label}] running as {child.info.run_id}")
        try:
            submitted = mlflow.projects.run(
                self.project_uri,
                entry_point=entry_point,
                parameters=params,
                experiment_id=self.experiment_id,
                run_id=child.info.run_id,
                env_manager=self.env_manager,
                synchronous=True,
            )
        except ExecutionException:
            self._record(label, child.info.run_id, reused=False)
            raise StageFailed(
                f"stage {entry_point!r} failed (run {child.info.run_id}): "
                f"{stage_error(child.info.run_id)}"
            ) from None
        self._record(label, submitted.run_id, reused=False)
        return effective_run(get_run(submitted.run_id))

    def _record(self, entry_point: str, run_id: str, reused: bool) -> None:
        self.stages[entry_point] = (run_id, reused)
        MlflowClient().set_tag(self.parent_run_id, tag.stage_of_pipeline(entry_point), run_id)


def current_git_commit(path: str) -> str | None:
    """HEAD of the project's git repository (what ``mlflow run`` records), if any."""
    try:
        import git

        return git.Repo(path, search_parent_directories=True).head.commit.hexsha
    except Exception:
        return None


__all__ = [
    "Pipeline",
    "StageFailed",
    "current_git_commit",
    "effective_run",
    "find_finished_stage",
    "stage_error",
]
