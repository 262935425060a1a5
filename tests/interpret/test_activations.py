"""Streaming activation statistics: values, early stop, hook hygiene, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.activations import _Collector, activation_stats
from tests.interpret.nets import Counter, no_hooks


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # "0"
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),  # "2"
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        Counter(),  # "7"
        nn.Linear(6, 2),
    )


def make_loader(n: int = 10, size: int = 16, batch_size: int = 4, with_idx: bool = True):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.arange(n) % 2
    idx = torch.arange(100, 100 + n)
    ds = TensorDataset(x, y, idx) if with_idx else TensorDataset(x, y)
    return DataLoader(ds, batch_size=batch_size, shuffle=False), x, y, idx


def test_stats_match_full_feature_maps():
    model = tiny_net().eval()
    loader, x, y, idx = make_loader()
    stats = activation_stats(model, loader, ["0", "2"], "cpu")
    with torch.no_grad():
        a0 = model[0](x)
        a2 = model[2](model[1](a0.clone()))
    for name, fmap in (("0", a0), ("2", a2)):
        s = stats[name]
        flat = fmap.flatten(2)
        assert s.max.shape == (10, fmap.shape[1]) and s.max.dtype == torch.float32
        torch.testing.assert_close(s.max, flat.amax(2))
        torch.testing.assert_close(s.mean, flat.mean(2))
        assert torch.equal(s.argmax.long(), flat.argmax(2))
        assert s.fmap_size == tuple(fmap.shape[2:])
        assert s.input_size == (16, 16)
        assert torch.equal(s.labels, y) and torch.equal(s.indices, idx)
        # location() maps the flat argmax back to (y, x) in the feature map
        fy, fx = s.location(3, 1)
        assert fmap[3, 1, fy, fx] == flat[3, 1].max()


def test_default_layers_are_every_conv_and_order_is_kept():
    stats = activation_stats(tiny_net(), make_loader()[0], None, "cpu")
    assert list(stats) == ["0", "2"]
    stats = activation_stats(tiny_net(), make_loader()[0], ["2", "0"], "cpu")
    assert list(stats) == ["2", "0"]


def test_forward_stops_after_deepest_hooked_layer():
    model = tiny_net()
    head_counter = model[7]
    activation_stats(model, make_loader()[0], ["0", "2"], "cpu")
    assert head_counter.calls == 0  # the head never ran
    activation_stats(model, make_loader()[0], ["7"], "cpu")  # a [B, C] layer is hooked too
    assert head_counter.calls == 3  # 10 images in batches of 4


def test_hooks_removed_and_mode_restored_after_success():
    model = tiny_net().train()
    bn_before = model[3].running_mean.clone()
    activation_stats(model, make_loader()[0], ["0", "2"], "cpu")
    assert no_hooks(model)
    assert model.training  # restored
    assert torch.equal(model[3].running_mean, bn_before)  # ran in eval mode


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_hooks_removed_when_forward_raises():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), Boom(), nn.Conv2d(4, 4, 3)).train()
    with pytest.raises(RuntimeError, match="boom"):
        activation_stats(model, make_loader()[0], ["0", "2"], "cpu")
    assert no_hooks(model)
    assert model.training


def test_without_indices_rows_are_numbered_and_x_only_batches_work():
    loader, *_ = make_loader(with_idx=False)
    s = activation_stats(tiny_net(), loader, ["0"], "cpu")["0"]
    assert torch.equal(s.indices, torch.arange(10))
    x_only = [torch.randn(3, 3, 16, 16), torch.randn(2, 3, 16, 16)]
    s = activation_stats(tiny_net(), x_only, ["0"], "cpu", reduce=("max",))["0"]
    assert s.labels is None and s.mean is None and s.argmax is None
    assert s.max.shape == (5, 4) and s.num_images == 5 and s.num_filters == 4
    dicts = [{"image": torch.randn(2, 3, 16, 16), "label": [1, 0], "index": [7, 9]}]
    s = activation_stats(tiny_net(), dicts, ["0"], "cpu")["0"]
    assert s.labels.tolist() == [1, 0] and s.indices.tolist() == [7, 9]
    with pytest.raises(IsicInputError, match="2 images but 3 labels"):
        activation_stats(tiny_net(), [(torch.randn(2, 3, 8, 8), [0, 1, 1])], ["0"], "cpu")


def test_unknown_layer_lists_conv_layers():
    with pytest.raises(IsicInputError, match=r"'nope'.*conv layers are: 0, 2"):
        activation_stats(tiny_net(), make_loader()[0], ["nope"], "cpu")


def test_bad_reduce_and_empty_loader():
    with pytest.raises(IsicInputError, match="unknown reduce"):
        activation_stats(tiny_net(), make_loader()[0], ["0"], "cpu", reduce=("median",))
    with pytest.raises(IsicInputError, match="no images"):
        activation_stats(tiny_net(), [], ["0"], "cpu")


def test_module_run_twice_per_forward_is_refused():
    conv = nn.Conv2d(3, 3, 3, padding=1)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv
            self.last = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return self.last(self.conv(self.conv(x)))

    model = Twice()
    with pytest.raises(IsicInputError, match="more than once"):
        activation_stats(model, make_loader()[0], ["conv", "last"], "cpu")
    assert no_hooks(model)


def test_changing_image_size_is_refused():
    batches = [torch.randn(2, 3, 16, 16), torch.randn(2, 3, 20, 20)]
    with pytest.raises(IsicInputError, match="changed size"):
        activation_stats(tiny_net(), batches, ["0"], "cpu")


def test_tables_are_written_into_blocks_and_joined_in_order():
    """Each batch's [B, C] results are copied into blocks allocated ahead (one per table when
    the loader says its size), so no small tensor per batch and layer stays alive; a batch
    that straddles two blocks, a short last block and a table never recorded all come out
    right."""
    chunks = [torch.arange(9.0).reshape(3, 3), torch.arange(9.0, 12.0).reshape(1, 3)]
    for block_rows in (2, 3, 4, 100):
        c = _Collector("conv", ("max", "mean"), block_rows)
        for chunk in chunks:
            c.add({"max": chunk, "mean": chunk * 2})
        assert torch.equal(c.joined("max"), torch.cat(chunks))
        assert torch.equal(c.joined("mean"), torch.cat(chunks) * 2)
        assert c.joined("max") is None and c.tables == {}  # let go once joined
        assert c.joined("argmax") is None  # not recorded
    c = _Collector("conv", ("max",), 4)
    c.add({"max": torch.ones(4, 2)})
    assert len(c.tables["max"].blocks) == 1  # a block of the loader's size: one allocation
