"""Where a model's weights start: the record, the exact rebuild of the base, freezing up to a
layer, heads of another size, per-architecture specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from isic_tracking.config import TrainConfig, requested_init
from isic_tracking.errors import IsicInputError
from isic_tracking.models import create_model
from isic_tracking.models.init import (
    build_initial,
    describe_init,
    find_in_cache_folder,
    init_for_arch,
    initial_model,
)
from isic_tracking.train.fold import build_model, checkpoint_config
from tests.helpers import same_weights


def test_the_requested_init_prefers_init_then_weights_then_pretrained():
    assert requested_init(None, None, False) == "random"
    assert requested_init(None, None, True) == "imagenet"
    assert requested_init(None, "/w.pth", True) == "/w.pth"
    assert requested_init("models:/m@a", "/w.pth", True) == "models:/m@a"


def test_random_init_is_recorded_with_its_seed_and_rebuilt_exactly():
    cfg = TrainConfig(arch="smallcnn", seed=7)
    model = build_model(cfg, torch.device("cpu"))
    config = checkpoint_config(cfg, model, [0.5] * 3, [0.2] * 3)
    assert config["init"] == {"kind": "random", "source": "seed 7", "seed": 7, "sha256": None}
    base = initial_model(config)
    assert same_weights(base, model)  # the head too: same seed, same fresh head
    other = initial_model({**config, "init": {**config["init"], "seed": 8}})
    assert not same_weights(other, model)


def test_a_weights_file_is_recorded_by_sha256_and_checked(tmp_path: Path):
    torch.manual_seed(0)
    donor = create_model("smallcnn", 5)  # another task's head: 5 outputs
    path = tmp_path / "base.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(path))
    cfg = TrainConfig(arch="smallcnn", init=str(path), seed=3)
    model = build_model(cfg, torch.device("cpu"))
    features = {k: v for k, v in donor.state_dict().items() if not k.startswith("head.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in features.items())
    assert model.head[1].out_features == 1  # the head of another size keeps its fresh init
    config = checkpoint_config(cfg, model, [0.5] * 3, [0.2] * 3)
    init = config["init"]
    assert init["kind"] == "file" and init["source"] == str(path.resolve())
    assert len(init["sha256"]) == 64
    assert same_weights(initial_model(config), model)
    save_file({k: v + 1 for k, v in features.items()}, str(path))  # the file changed since
    with pytest.raises(IsicInputError, match="changed since the model was trained"):
        initial_model(config)


def test_a_model_init_needs_its_fetched_file_and_is_checked(tmp_path: Path):
    torch.manual_seed(1)
    donor = create_model("smallcnn", 4)
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(path))
    with pytest.raises(IsicInputError, match="not fetched"):
        describe_init("smallcnn", "models:/isic-pretrain-smallcnn@champion", 0)
    init = describe_init("smallcnn", "models:/isic-pretrain-smallcnn@champion", 0, str(path))
    assert init.kind == "model" and init.source.startswith("models:/")
    model = build_initial("smallcnn", 1, init.source, 0, weights_file=str(path))
    config = {**model.isic_config, "init": init.record()}
    assert same_weights(initial_model(config, str(path)), model)
    other = tmp_path / "other.safetensors"
    save_file({k: v + 1 for k, v in donor.state_dict().items()}, str(other))
    with pytest.raises(IsicInputError, match="not the one the model started from"):
        initial_model(config, str(other))


def test_a_model_trained_before_the_record_says_so():
    with pytest.raises(IsicInputError, match="before its init was recorded"):
        initial_model({"arch": "smallcnn", "num_outputs": 1})


def test_freeze_up_to_a_layer_freezes_it_and_everything_before_with_batchnorm_stats():
    model = create_model("smallcnn", 1, freeze="upto:features.4")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"features.0.weight", "features.1.weight", "features.1.bias",
                      "features.4.weight"}  # fmt: skip
    assert model.features[1].momentum == 0.0 and model.features[5].momentum != 0.0
    before = model.features[1].running_mean.clone()
    model.train()(torch.rand(4, 3, 32, 32))
    assert torch.equal(model.features[1].running_mean, before)
    with pytest.raises(IsicInputError, match="no layer 'features.99'"):
        create_model("smallcnn", 1, freeze="upto:features.99")


def test_per_architecture_specs(tmp_path: Path):
    assert init_for_arch(None, "alexnet") is None
    spec = "smallcnn=models:/isic-pretrain-smallcnn@champion,timm:resnet10t=random"
    assert init_for_arch(spec, "smallcnn") == "models:/isic-pretrain-smallcnn@champion"
    assert init_for_arch(spec, "timm:resnet10t") == "random"
    assert init_for_arch(spec, "alexnet") is None
    assert init_for_arch("random", "vgg16") == "random"
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    file = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    file.write_bytes(b"")
    assert init_for_arch(str(tmp_path), "alexnet") == str(file)
    assert find_in_cache_folder(tmp_path / "hub", "alexnet") == file
    with pytest.raises(IsicInputError, match=r"looked for resnet50-\*\.pth") as err:
        init_for_arch(str(tmp_path), "resnet50")
    assert "\n" not in str(err.value)
