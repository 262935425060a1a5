"""End to end: ``mlflow run . -e thesis`` (tiny profile, a 2 x 2 grid) against a real
``mlflow server``: every chain a child of one study run, ``compare`` per task, and a
``report.html`` (logged and on disk) that has every table and figure of the thesis's list for
every (architecture, task), each linked to a run that exists; a second invocation reuses
every chain."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.e2e.helpers import env_for, mlflow_server, rest
from tests.e2e.test_pipeline_e2e import _project_copy, _tags

pytestmark = pytest.mark.slow

ARCHS = ("timm:test_resnet", "smallcnn")
TASKS = ("binary", "multiclass")
#: report section -> what each (arch, task) item must carry
NEEDS = {
    "results": "table",
    "test": "img",  # the champion's confusion, PR and calibration on the test set
    "layers": "img",  # the layer profile of every (arch, task)
    "confusion": "img",
    "top5": "table",
    "class-filters": "img",
    "featvis": "img",
    "sanity": "img",
}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


class _Items(HTMLParser):
    """Per ``<section class="item" id=...>``: the tags inside, and every run link."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, list[str]] = {}
        self.run_ids: list[str] = []
        self.scripts = 0
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "section" and a.get("class") == "item":
            self._current = str(a["id"])
            self.items[self._current] = []
        elif self._current is not None:
            self.items[self._current].append(tag)
        if tag == "a" and a.get("data-run-id"):
            self.run_ids.append(str(a["data-run-id"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._current = None


def _thesis(proj: Path) -> list[str]:
    return [
        "mlflow", "run", str(proj), "-e", "thesis", "--env-manager", "local",
        "-P", "profile=tiny", "-P", f"archs={','.join(ARCHS)}", "-P", f"tasks={','.join(TASKS)}",
    ]  # fmt: skip


def test_thesis_study_and_report(tmp_path: Path) -> None:
    if shutil.which("mlflow") is None:
        pytest.fail("the mlflow CLI is not on PATH: run the README set-up command")
    proj = _project_copy(tmp_path)
    with mlflow_server(tmp_path) as url:
        env = env_for(url)
        first = subprocess.run(
            _thesis(proj), cwd=proj, env=env, capture_output=True, text=True, timeout=2400
        )
        out = first.stdout + first.stderr
        assert first.returncode == 0, out[-6000:]
        exps = rest(url, "experiments/search", {"max_results": 100})["experiments"]
        ids = [e["experiment_id"] for e in exps]
        runs = rest(url, "runs/search", {"experiment_ids": ids, "max_results": 2000})["runs"]
        by_id = {r["info"]["run_id"]: r for r in runs}
        study = next(r for r in runs if _tags(r).get("isic.stage") == "thesis")
        study_id, st = study["info"]["run_id"], _tags(study)
        assert by_id[study_id]["info"]["experiment_id"] == next(
            e["experiment_id"] for e in exps if e["name"] == "isic-thesis"
        )  # the study's own experiment (mlflow run's launcher stays in Default)
        chains = {k: v for k, v in st.items() if k.startswith("stage.main-")}
        assert sorted(chains) == sorted(f"stage.main-{t}-{_slug(a)}" for t in TASKS for a in ARCHS)
        for run_id in chains.values():  # each chain a child of the study run, all finished
            assert _tags(by_id[run_id])["mlflow.parentRunId"] == study_id
            assert by_id[run_id]["info"]["status"] == "FINISHED"
        for task in TASKS:
            cmp = by_id[st[f"stage.compare-{task}"]]
            assert _tags(cmp)["isic.stage"] == "compare"

        listing = rest(url, "artifacts/list", run_id=study_id)
        assert "report.html" in {f["path"] for f in listing["files"]}
        on_disk = next(
            line.split("report: ", 1)[1].split()[0]
            for line in out.splitlines()
            if "report: " in line
        )
        page = Path(on_disk).read_text(encoding="utf-8")
        parsed = _Items()
        parsed.feed(page)
        assert parsed.scripts == 0
        for section, needed in NEEDS.items():
            for task in TASKS:
                for arch in ARCHS:
                    item = f"{section}-{_slug(task)}-{_slug(arch)}"
                    assert item in parsed.items, f"report lacks {item}"
                    assert needed in parsed.items[item], f"{item} has no {needed}"
                    assert "a" in parsed.items[item], f"{item} names no run"
        for task in TASKS:
            assert "table" in parsed.items[f"results-{task}"]
        assert parsed.run_ids and set(parsed.run_ids) <= set(by_id), "a link to a missing run"

        second = subprocess.run(
            _thesis(proj), cwd=proj, env=env, capture_output=True, text=True, timeout=1200
        )
        again = second.stdout + second.stderr
        assert second.returncode == 0, again[-4000:]
        for label in [*chains, *(f"stage.compare-{t}" for t in TASKS)]:
            assert f"[{label.removeprefix('stage.')}] reusing finished run" in again, label
