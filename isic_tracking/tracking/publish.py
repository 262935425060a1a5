"""A report on disk and on its run: ``report.html`` written beside the MLflow store and
logged as an artifact of the active run (MLflow's artifact viewer shows HTML)."""

from __future__ import annotations

from pathlib import Path

import mlflow

from isic_tracking.report import Report, render_html
from isic_tracking.tracking import tag

REPORT = "report.html"


def report_path(kind: str, run_id: str, report_dir: str | None = None) -> Path:
    """``<dir>/reports/<kind>-<run id>/report.html``; ``dir`` is ``report_dir``, else the
    sqlite database's folder, else ``outputs/`` (a tracking server keeps only the artifact)."""
    if report_dir:
        base = Path(report_dir)
    else:
        uri = mlflow.get_tracking_uri()
        sqlite = uri.startswith("sqlite:///")
        base = Path(uri.removeprefix("sqlite:///")).parent if sqlite else Path("outputs")
    return (base / "reports" / f"{kind}-{run_id}" / REPORT).resolve()  # printed: absolute


def write_report(html: str, path: Path) -> Path:
    """Write atomically (a crash leaves the old report or none, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def publish(report: Report, kind: str, report_dir: str | None = None) -> Path:
    """Render ``report``, write it (:func:`report_path`) and log it on the active run
    (artifact ``report.html``, tag ``isic.report``); returns the file."""
    run_id = mlflow.active_run().info.run_id
    path = write_report(render_html(report), report_path(kind, run_id, report_dir))
    mlflow.log_artifact(str(path))
    mlflow.set_tag(tag.REPORT, REPORT)
    return path
