"""The ``pretrain`` stage's MLflow side: one run that trains the base on fractal categories
(:mod:`.fit`, no MLflow), logs per-epoch metrics and the model as a pyfunc LoggedModel, and
registers it as ``isic-pretrain-<arch>`` with the alias ``champion``, so ``train -P
init=models:/isic-pretrain-<arch>@champion`` fine-tunes from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import torch
from mlflow.tracking import MlflowClient

from isic_tracking.data.fractals import class_names, fractal_dataset
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.log import get_logger
from isic_tracking.models import create_model
from isic_tracking.models.init import describe_init, native_state_dict
from isic_tracking.stages.pretrain.config import PretrainConfig
from isic_tracking.stages.pretrain.fit import pretrain, split_data
from isic_tracking.tracking import tag
from isic_tracking.tracking.pyfunc import log_fold_model
from isic_tracking.tracking.runs import describe, log_metrics, stage_run
from isic_tracking.utils import resolve_device, seed_everything

log = get_logger(__name__)
STAGE = "pretrain"
TASK = "pretrain"


def model_name(cfg: PretrainConfig) -> str:
    """The registered name: ``isic-pretrain-<arch>`` unless ``register_as`` says otherwise."""
    return cfg.register_as or f"isic-pretrain-{cfg.arch.replace(':', '-')}"


def export_weights(model: torch.nn.Module, path: str | Path) -> Path:
    """Write the weights in the architecture's own key names (.safetensors or .pth)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in native_state_dict(model).items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def _register(name: str, info, cfg: PretrainConfig, row: dict[str, float]) -> str:
    client = MlflowClient()
    version = mlflow.register_model(info.model_uri, name).version
    client.set_registered_model_alias(name, "champion", version)
    about = (f"Offline base: **{cfg.arch}** pre-trained on {cfg.n_classes} fractal categories "
             f"(formula-driven, Kataoka et al. 2020), {cfg.image_size} px, seed {cfg.seed}; "
             f"validation accuracy {row['val_accuracy']:.3f}. Fine-tune from it with "
             f"`train -P init=models:/{name}@champion`.")  # fmt: skip
    client.update_model_version(name, version, description=about)
    return version


def run_pretrain(cfg: PretrainConfig) -> str:
    """Pre-train, log and register; returns the registered model URI."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    x, y = fractal_dataset(cfg.n_classes, cfg.per_class, cfg.image_size, cfg.seed)
    data = split_data(x, y, cfg.val_fraction, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, cfg.n_classes, dropout=cfg.dropout)
    name = model_name(cfg)
    params = {**dataclasses.asdict(cfg), "n_train": len(data.train_y), "n_val": len(data.val_y),
              "source": "fractal categories (isic_tracking.data.fractals)"}  # fmt: skip
    with stage_run(STAGE, params, run_name=f"pretrain-{cfg.arch}", task=TASK) as run:
        rows = pretrain(model.to(device), data, cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed,
                        on_epoch=lambda e, r: _epoch(e, r, cfg.epochs))  # fmt: skip
        model = model.cpu().eval()
        config = {**model.isic_config, "task": TASK, "classes": class_names(cfg.n_classes),
                  "image_size": cfg.image_size, "mean": list(IMAGENET_MEAN),
                  "std": list(IMAGENET_STD),
                  "init": describe_init(cfg.arch, "random", cfg.seed).record()}  # fmt: skip
        final = {f"final_{k}": v for k, v in rows[-1].items() if k != "lr"}
        info = log_fold_model(model, config, final, step=cfg.epochs)
        version = _register(name, info, cfg, rows[-1])
        if cfg.export:
            path = export_weights(model, cfg.export)
            mlflow.log_param("exported_to", str(path))
            log.info(f"exported the weights to {path}")
        uri = f"models:/{name}@champion"
        mlflow.set_tags({tag.REGISTERED_MODEL: name, tag.CHAMPION_VERSION: version,
                         tag.COMPLETE: "true"})  # fmt: skip
        describe(f"**pretrain** {cfg.arch} on {cfg.n_classes} fractal categories × "
                 f"{cfg.per_class} images ({cfg.image_size} px): validation accuracy "
                 f"{rows[-1]['val_accuracy']:.3f} after {cfg.epochs} epochs. Registered as "
                 f"`{uri}` (version {version}).")  # fmt: skip
        log.info(f"pretrain: val accuracy {rows[-1]['val_accuracy']:.3f}; registered {uri} "
                 f"(version {version}, run {run.info.run_id})")  # fmt: skip
    return uri


def _epoch(epoch: int, row: dict[str, float], epochs: int) -> None:
    log_metrics(row, step=epoch)
    log.info(
        f"pretrain epoch {epoch}/{epochs}: " + " ".join(f"{k} {v:.4g}" for k, v in row.items())
    )
