"""Where a report goes and how it is written and logged."""

from __future__ import annotations

from pathlib import Path

import mlflow

from isic_tracking.report import Report
from isic_tracking.tracking import tag
from isic_tracking.tracking.publish import publish, report_path, write_report


def test_report_goes_beside_the_sqlite_store(mlflow_tracking: str, tmp_path: Path) -> None:
    db = Path(mlflow_tracking.removeprefix("sqlite:///"))
    assert report_path("thesis", "r1") == db.parent / "reports/thesis-r1/report.html"
    assert report_path("main", "r1", str(tmp_path / "x")) == (
        tmp_path / "x/reports/main-r1/report.html"
    )


def test_write_report_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "a" / "report.html"
    write_report("<p>one</p>", path)
    write_report("<p>two</p>", path)
    assert path.read_text() == "<p>two</p>"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]  # no temp left


def test_publish_logs_the_file_on_the_active_run(mlflow_tracking: str, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        path = publish(Report("t", ["s"], []), "main", str(tmp_path))
    assert path == tmp_path / f"reports/main-{run.info.run_id}/report.html"
    assert "<h1>t</h1>" in path.read_text()
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="report.html"
    )
    assert Path(logged).read_text() == path.read_text()
    assert mlflow.get_run(run.info.run_id).data.tags[tag.REPORT] == "report.html"
