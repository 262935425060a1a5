"""The thesis's scale, rehearsed on synthetic data: how each stage grows with images.

Three steps, each stage a separate process measured from outside (``os.wait4``: wall time,
CPU time user + system, peak resident memory of that process) and from inside (how often
each analysed image was decoded, counted per file in ``ManifestDataset``):

1. **prepare** on an ISIC-2020-shaped listing (``--n_listing`` rows, default the 33,126 of
   ISIC 2020, 1.76 % malignant, ~16 images per patient; JPEGs of ``--jpeg_size``, default
   1024x683 like the common downsampled ISIC 2020 sets).
2. A **stub model** per architecture (random init, one batch of training: the analysis
   stages' cost does not depend on what the weights learned), registered as
   ``rehearsal-<arch>`` so the stages pull it by ``models:/rehearsal-<arch>@champion`` as
   a user's would be pulled.
3. **filters, visualize, sanity, layers** on stratified subsets of the prepared training rows
   (``--sizes``, default 1000, 2000, 4000: the size of a validation fold), with the ``full``
   profile's settings (the thesis's: every conv layer, top 5, ablation of 3 filters with 50
   random draws, 200 render steps of the top 5 of the first and last layer with and without
   regularization, 200 natural images per class, ...), overridable with ``--set
   stage.key=value``.

Results go to ``<out>/rehearsal.json`` and markdown tables on stdout: per stage, size and
architecture the wall and CPU seconds, peak memory and decodes per analysed image; then per
stage the marginal CPU seconds per image between consecutive sizes (the fixed part, model
loading and logging, drops out: equal marginal costs mean linear growth), the fixed part,
and the peak memory ratio of the largest to the smallest size (1: flat).

    python -m bench.scale_rehearsal --out build/rehearsal                 # everything
    python -m bench.scale_rehearsal --out build/rehearsal --archs resnet50 --sizes 250,500 \
        --n_listing 2000 --set visualize.steps=20                          # a quick look

Everything runs on CPU under the machine's cores; the data and the tracking store stay in
``--out`` (delete it afterwards; ``--keep_data`` skips regenerating the listing).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

if not __package__:  # run as a script: the repository root, so that `bench.` imports
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isic_tracking.data.manifest import read_manifest  # noqa: E402

#: the thesis's analysis settings: the ``full`` profile of ``main``, per stage
STAGES = ("filters", "visualize", "sanity", "layers")

#: ISIC 2020's training set: 33,126 images, 584 malignant, 2,056 patients
ISIC2020_ROWS, ISIC2020_MALIGNANT, ISIC2020_PATIENTS = 33126, 584, 2056


@dataclass(frozen=True)
class StageCost:
    """What one stage process cost: measured by the parent (time, memory) and by the stage's
    own process (decodes per image, via ``REHEARSAL_DECODES``)."""

    stage: str
    arch: str
    images: int
    wall_s: float
    cpu_s: float
    peak_mib: float
    decodes: int
    decoded_images: int
    max_decodes_per_image: int
    rc: int


# --- the ISIC-2020-shaped listing ---------------------------------------------------------


def _jpeg(args: tuple[Path, int, int, int, bool]) -> None:
    """One smooth random skin-like image with a darker ellipse, as a JPEG of ``w x h``."""
    from PIL import Image, ImageDraw

    path, w, h, seed, malignant = args
    rng = np.random.default_rng(seed)
    base = rng.normal([190, 140, 120], 12, size=(12, 18, 3)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(base).resize((w, h), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
    rx, ry = rng.uniform(0.08, 0.25) * w, rng.uniform(0.08, 0.25) * h
    colour = (60, 35, 30) if malignant else tuple(int(v) for v in rng.integers(90, 140, 3))
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
    img.save(path, quality=90)


def write_listing(out: Path, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    """An ISIC 2020 Kaggle layout (``train.csv`` + ``jpeg/train/``) of ``n`` images with
    ISIC 2020's malignant rate and images per patient. Returns its root."""
    rng = np.random.default_rng(seed)
    images = out / "jpeg" / "train"
    images.mkdir(parents=True, exist_ok=True)
    n_mal = max(2, round(n * ISIC2020_MALIGNANT / ISIC2020_ROWS))
    target = np.zeros(n, dtype=int)
    target[rng.choice(n, n_mal, replace=False)] = 1
    patients = max(2, round(n * ISIC2020_PATIENTS / ISIC2020_ROWS))
    names = [f"ISIC_{i:07d}" for i in range(n)]
    df = pd.DataFrame({
        "image_name": names,
        "patient_id": [f"IP_{p:07d}" for p in rng.integers(0, patients, n)],
        "sex": rng.choice(["male", "female"], n),
        "age_approx": rng.choice(np.arange(20, 90, 5), n).astype(float),
        "anatom_site_general_challenge": rng.choice(["torso", "lower extremity", "head/neck"], n),
        "diagnosis": np.where(target == 1, "melanoma", "nevus"),
        "benign_malignant": np.where(target == 1, "malignant", "benign"),
        "target": target,
    })  # fmt: skip
    todo = [
        (images / f"{name}.jpg", size[0], size[1], seed * 1_000_003 + i, bool(t))
        for i, (name, t) in enumerate(zip(names, target, strict=True))
        if not (images / f"{name}.jpg").exists()
    ]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_jpeg, todo, chunksize=64))
    df.to_csv(out / "train.csv", index=False)
    return out


def stratified_subset(manifest: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` training rows with the manifest's class mix (at least 2 per class); paths stay
    as given (absolute from :func:`read_manifest`), so the subset can live anywhere."""
    train = manifest[manifest["split"] == "train"]
    parts = []
    for _, rows in train.groupby("label"):
        k = max(2, round(n * len(rows) / len(train)))
        parts.append(rows.sample(min(k, len(rows)), random_state=seed))
    sub = pd.concat(parts)
    return sub.sample(frac=1.0, random_state=seed).head(n).reset_index(drop=True)


# --- one stage as a measured process --------------------------------------------------------


def _count_decodes(report: Path) -> None:
    """In the stage's process: count every image read of ``ManifestDataset`` per file and
    write the counts to ``report`` when the process exits."""
    import atexit

    from isic_tracking.data import dataset

    counts: dict[str, int] = {}
    real = dataset.ManifestDataset.__getitem__

    def counted(self, index):
        path = str(self.paths[index])
        counts[path] = counts.get(path, 0) + 1
        return real(self, index)

    dataset.ManifestDataset.__getitem__ = counted
    atexit.register(lambda: report.write_text(json.dumps(counts)))


def stage_main(stage: str, argv: Sequence[str]) -> int:
    """The child side: the stage's own entry point, with decodes counted."""
    import importlib

    _count_decodes(Path(os.environ["REHEARSAL_DECODES"]))
    return int(importlib.import_module(f"entrypoints.{stage}").main(list(argv)) or 0)


def measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float, float]:
    """Run ``cmd``; (exit code, wall s, CPU s of the process and its children, peak MiB).

    ``os.wait4`` gives the child's own rusage; DataLoader workers or decode processes it
    started and waited for are in it too (``RUSAGE_CHILDREN`` semantics of the child)."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_mib = usage.ru_maxrss / 1024  # kilobytes on Linux
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, peak_mib


def run_stage(stage: str, arch: str, n: int, argv: list[str], out: Path) -> StageCost:
    """One stage process on ``n`` images; its log is ``<out>/logs/<stage>-<arch>-<n>.log``."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tag = f"{stage}-{arch}-{n}"
    decodes = logs / f"{tag}.decodes.json"
    env = {**os.environ, "REHEARSAL_DECODES": str(decodes)}
    cmd = [sys.executable, "-m", "bench.scale_rehearsal", "_stage", stage, *argv]
    print(f"$ {shlex.join(['python', '-m', f'entrypoints.{stage}', *argv])}", flush=True)
    rc, wall, cpu, peak = measured(cmd, env, logs / f"{tag}.log")
    counts = json.loads(decodes.read_text()) if decodes.exists() else {}
    cost = StageCost(
        stage, arch, n, round(wall, 1), round(cpu, 1), round(peak), sum(counts.values()),
        len(counts), max(counts.values(), default=0), rc,
    )  # fmt: skip
    print(f"  {cost}", flush=True)
    if rc:
        print(f"  FAILED: see {logs / f'{tag}.log'}", flush=True)
    return cost


# --- the rehearsal ---------------------------------------------------------------------------


#: each stage's settings at the thesis's scale (the ``full`` profile), as command-line flags
def thesis_settings() -> dict[str, dict[str, str]]:
    from isic_tracking.profiles import PROFILES

    full = PROFILES["full"]
    out = {s: {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in full[s].items()}
           for s in STAGES}  # fmt: skip
    out["sanity"]["image_size"] = str(full["visualize"]["image_size"])
    return out


def _flags(settings: dict[str, str]) -> list[str]:
    return [a for k, v in settings.items() for a in (f"--{k}", v)]


def _latest_run(experiment: str, run_name: str) -> str:
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[experiment], filter_string=f"tags.mlflow.runName = '{run_name}'",
        order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
    )  # fmt: skip
    if not runs:
        raise RuntimeError(f"no {run_name!r} run in experiment {experiment!r}")
    return runs[0].info.run_id


def _registered(name: str) -> bool:
    """A rehearsal's stub model registered by an earlier run of the same ``--out``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient().get_model_version_by_alias(name, "champion")
    except MlflowException:
        return False
    return True


def stub_model(arch: str, manifest: Path, out: Path, experiment: str) -> str:
    """Register ``rehearsal-<arch>``: random init, one batch of one epoch of two folds at
    224 px on a small subset (once per ``--out``). Returns its model URI."""
    name = f"rehearsal-{arch}"
    if _registered(name):
        return f"models:/{name}@champion"
    sub = out / f"stub-{arch}.csv"
    stratified_subset(read_manifest(manifest), 64).to_csv(sub, index=False)
    argv = ["--experiment", experiment, "--manifest", str(sub), "--arch", arch,
            "--image_size", "224", "--init", "random", "--folds", "2", "--epochs", "1",
            "--max_batches", "1", "--batch_size", "16", "--register_as", name,
            "--work_dir", str(out / "train-work")]  # fmt: skip
    rc = subprocess.call([sys.executable, "-m", "entrypoints.train", *argv],
                         stdout=(out / "logs" / f"train-{arch}.log").open("w"),
                         stderr=subprocess.STDOUT)  # fmt: skip
    if rc:
        raise RuntimeError(f"stub training of {arch} failed: see {out}/logs/train-{arch}.log")
    return f"models:/{name}@champion"


def analysis_chain(arch: str, uri: str, sub: Path, n: int, args, settings) -> list[StageCost]:
    """filters, visualize (the filters run's top filters), sanity (the visualize run's
    pictures), layers on one subset; each pulls the registered model."""
    common = ["--experiment", args.experiment, "--model_uri", uri]
    data = ["--manifest", str(sub), "--split", "all"]
    costs = []
    for stage in STAGES:
        if stage not in args.stages:
            continue
        extra = list(data)
        if stage == "visualize" and "filters" in args.stages:
            extra += ["--filters_run", _latest_run(args.experiment, "filters")]
        if stage == "sanity" and "visualize" in args.stages:
            extra += ["--fv_run", _latest_run(args.experiment, "visualize")]
        argv = common + extra + _flags(settings[stage])
        costs.append(run_stage(stage, arch, n, argv, args.out))
    return costs


def growth(costs: list[StageCost]) -> pd.DataFrame:
    """Per stage and architecture, how cost grows with images: the marginal CPU seconds per
    image between consecutive sizes (a stage's fixed part, model loading and logging, drops
    out), the ratio of the last to the first marginal cost (1: linear; above 1: worse than
    linear), the fixed part (CPU at the smallest size minus its images x the first marginal
    cost) and the peak memory ratio largest / smallest (1: flat)."""
    df = pd.DataFrame([asdict(c) for c in costs if c.rc == 0])
    rows = []
    for (stage, arch), g in df.groupby(["stage", "arch"], sort=False):
        g = g.sort_values("images").reset_index(drop=True)
        if len(g) < 2:
            continue
        marginal = [
            (g.cpu_s[k + 1] - g.cpu_s[k]) / (g.images[k + 1] - g.images[k])
            for k in range(len(g) - 1)
        ]
        rows.append({
            "stage": stage, "arch": arch, "images": " -> ".join(map(str, g.images)),
            "marginal_cpu_s_per_image": " -> ".join(f"{m:.3f}" for m in marginal),
            "marginal_ratio": round(marginal[-1] / marginal[0], 2) if marginal[0] > 0 else "-",
            "fixed_cpu_s": round(g.cpu_s[0] - g.images[0] * marginal[0], 1),
            "peak_memory_ratio": round(g.peak_mib.iloc[-1] / g.peak_mib[0], 2),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("build/rehearsal"))
    p.add_argument("--archs", default="resnet50,vgg16")
    p.add_argument("--sizes", default="1000,2000,4000", help="images per analysed subset")
    p.add_argument("--n_listing", type=int, default=ISIC2020_ROWS, help="rows of the listing")
    p.add_argument("--jpeg_size", default="1024x683", help="WxH of the listing's JPEGs")
    p.add_argument("--stages", default="prepare," + ",".join(STAGES))
    p.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE",
                   help="override a thesis setting, e.g. visualize.steps=50")  # fmt: skip
    p.add_argument("--experiment", default="rehearsal")
    p.add_argument("--report", type=Path, help="only print the tables of this rehearsal.json")
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    return args


def _settings(overrides: list[str]) -> dict[str, dict[str, str]]:
    settings = thesis_settings()
    for item in overrides:
        key, _, value = item.partition("=")
        stage, _, name = key.partition(".")
        if stage not in settings or not name or not value:
            raise SystemExit(f"--set {item!r}: use STAGE.KEY=VALUE with STAGE in {STAGES}")
        settings[stage][name] = value
    return settings


def _prepare(args) -> tuple[Path, list[StageCost]]:
    """The listing (made once) and the prepare stage on it; returns the manifest path."""
    w, h = (int(v) for v in args.jpeg_size.lower().split("x"))
    root = args.out / f"isic2020-like-{args.n_listing}"
    if not (root / "train.csv").exists():
        t0 = time.perf_counter()
        write_listing(root, args.n_listing, (w, h))
        print(f"listing: {args.n_listing} JPEGs {w}x{h} in {time.perf_counter() - t0:.0f} s")
    cache = args.out / "prepared"
    costs = []
    if "prepare" in args.stages or not (cache / "manifest.csv").exists():
        argv = ["--experiment", args.experiment, "--dataset", "isic2020", "--root", str(root),
                "--out", str(cache), "--image_size", "256"]  # fmt: skip
        costs.append(run_stage("prepare", "-", args.n_listing, argv, args.out))
    return cache / "manifest.csv", costs


def markdown(df: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (no ``tabulate`` needed)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _table(costs: list[StageCost]) -> str:
    df = pd.DataFrame([asdict(c) for c in costs])
    df["decodes_per_image"] = (df["decodes"] / df["decoded_images"].clip(lower=1)).round(2)
    cols = ["stage", "arch", "images", "wall_s", "cpu_s", "peak_mib", "decodes_per_image",
            "max_decodes_per_image", "rc"]  # fmt: skip
    return markdown(df[cols])


def report(path: Path) -> None:
    """The tables of a finished (or interrupted) rehearsal's ``rehearsal.json``."""
    costs = [StageCost(**c) for c in json.loads(path.read_text())]
    print(_table(costs))
    print()
    print(markdown(growth(costs)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.report:
        report(args.report)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{args.out / 'mlflow.db'}")
    settings = _settings(args.set)
    print(f"CPU: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; settings "
          f"{json.dumps(settings)}", flush=True)  # fmt: skip
    manifest, costs = _prepare(args)
    for arch in [a.strip() for a in args.archs.split(",") if a.strip()]:
        uri = stub_model(arch, manifest, args.out, args.experiment)
        for n in sorted(int(s) for s in args.sizes.split(",")):
            sub = args.out / f"subset-{n}.csv"
            if not sub.exists():
                stratified_subset(read_manifest(manifest), n).to_csv(sub, index=False)
            costs += analysis_chain(arch, uri, sub, n, args, settings)
            (args.out / "rehearsal.json").write_text(
                json.dumps([asdict(c) for c in costs], indent=1)
            )
    report(args.out / "rehearsal.json")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0 if all(c.rc == 0 for c in costs) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_stage":
        sys.exit(stage_main(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
