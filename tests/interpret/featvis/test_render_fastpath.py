"""The render engine's fast path: bf16 detection and fallback, progressive
resolution, channels-last input, and the settings that say which path ran."""

from __future__ import annotations

import pytest
import torch

from isic_tracking.interpret.featvis import channel, render
from isic_tracking.interpret.featvis.fastpath import (
    SpaceToDepthConv,
    TargetChannelConv,
    bf16_supported,
    compute_target_channels,
    cpu_bf16_supported,
    fold_batchnorm,
    isa_capped_below_bf16,
    path_params,
    plan,
    pool_before_relu,
    stem_space_to_depth,
)
from isic_tracking.interpret.featvis.presets import preset
from isic_tracking.interpret.hooks import LayerRecorder
from isic_tracking.models import create_model

CPU = torch.device("cpu")


def test_cpu_bf16_detection_follows_the_cpu_flags():
    flags = (
        open("/proc/cpuinfo").read().split()
        if __import__("os").path.exists("/proc/cpuinfo")
        else []
    )
    native = cpu_bf16_supported()
    assert isinstance(native, bool) and native == bf16_supported(CPU)
    if flags:  # Linux: the kernel's flags say whether the CPU has AMX or AVX512-BF16
        assert native == ("amx_bf16" in flags or "avx512_bf16" in flags)


def test_plan_uses_bf16_only_where_native_and_falls_back_cleanly():
    fast = plan(CPU, 224, 100, native_bf16=True)
    assert fast.amp and fast.channels_last and fast.stages == ((224, 100),)
    assert fast.settings()["amp"] == "bfloat16" and fast.settings()["path"] == "fast"
    slow = plan(CPU, 224, 100, native_bf16=False)
    assert not slow.amp and "no native bfloat16" in slow.reason
    assert slow.settings()["amp"] == "off"
    assert not plan(CPU, 224, 100, amp=False, native_bf16=True).amp
    gpu = plan(torch.device("cuda"), 224, 100, native_bf16=False)
    assert not gpu.amp and not gpu.channels_last and gpu.stages == ((224, 100),)
    plain = plan(CPU, 224, 100, amp=False, channels_last=False, fold_bn=False, progressive=0.0)
    assert not plain.fast and plain.settings()["path"] == "plain"


def test_plan_skips_the_low_stage_where_the_model_cannot_run_or_it_saves_nothing():
    assert plan(CPU, 224, 100, progressive=0.5, fits=lambda s: s >= 150).stages == ((224, 100),)
    assert (
        "does not run at 112 px"
        in plan(CPU, 224, 100, progressive=0.5, fits=lambda s: False).reason
    )
    assert plan(CPU, 224, 100, progressive=0.25).stages == ((112, 25), (224, 75))
    with pytest.raises(ValueError, match="progressive"):
        plan(CPU, 224, 100, progressive=1.0)


def test_default_render_on_cpu_says_which_path_ran(tiny_cnn):
    res = render(tiny_cnn, channel("6", [0, 1]), size=32, steps=3)
    s = res.settings
    assert s["amp"] == ("bfloat16" if cpu_bf16_supported() else "off")
    assert s["channels_last"] is True and s["stages"] == [[32, 3]]
    plain = render(tiny_cnn, channel("6", [0, 1]), size=32, steps=3, amp=False,
                   channels_last=False, fold_bn=False)  # fmt: skip
    assert plain.settings["path"] == "plain" and plain.settings["amp"] == "off"


def test_progressive_renders_the_requested_size_and_calls_on_step_at_full_size(tiny_cnn):
    seen = []
    res = render(
        tiny_cnn, channel("6", [0, 1, 2]), size=48, steps=6, progressive=0.5,
        on_step=lambda step, images: seen.append((step, tuple(images().shape))),
    )  # fmt: skip
    assert res.images.shape == (3, 3, 48, 48)
    assert res.settings["stages"] == [[24, 3], [48, 3]]
    assert seen == [(i, (3, 3, 48, 48)) for i in range(1, 7)]


def test_progressive_full_stage_continues_from_the_upsampled_low_stage_image():
    torch.manual_seed(0)
    model = create_model("smallcnn", 2).eval()
    seen = {}
    render(
        model, channel("features.8", [0, 1]), size=64, steps=10, progressive=0.5,
        amp=False, on_step=lambda step, images: seen.__setitem__(step, images()),
        **preset("fourier"),
    )  # fmt: skip
    # step 6 is one Adam step after the switch: step 5's pattern, not a fresh grey start
    a, b = (seen[5] - 0.5).flatten(), (seen[6] - 0.5).flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert corr > 0.8, corr


def test_fast_path_reaches_the_plain_paths_activation_on_a_small_real_model():
    """The quality guard: the default CPU path (bf16 autocast where native, channels-last,
    lr 0.2) reaches at least the activation of the engine before it (fp32, lr 0.05), and bf16
    alone does not lower it (same learning rate)."""
    torch.manual_seed(0)
    model = create_model("smallcnn", 2).eval()
    obj = channel("features.8", list(range(3)))
    fourier = {k: v for k, v in preset("fourier").items() if k != "lr"}  # render's default lr
    kw = dict(size=96, steps=20, seed=0, record_every=0, **fourier)
    old = render(model, obj, amp=False, channels_last=False, lr=0.05, **kw)
    fp32 = render(model, obj, amp=False, channels_last=False, **kw)
    fast = render(model, obj, **kw)
    assert fast.settings["stages"] == [[96, 20]] and fast.settings["lr"] == 0.2
    assert fast.activation.mean() >= old.activation.mean(), (fast.activation, old.activation)
    assert fast.activation.mean() >= 0.95 * fp32.activation.mean(), (
        fast.activation,
        fp32.activation,
    )


def test_fold_batchnorm_keeps_the_outputs_and_restores_the_modules():
    torch.manual_seed(0)
    model = create_model("smallcnn", 2)
    for m in model.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(2, 3, 32, 32)
    before = model(x)
    originals = list(model.features)
    with torch.no_grad(), fold_batchnorm(model, keep={"features.12"}) as folded:
        assert folded == 3  # the pair of the kept conv features.12 stays as it is
        assert isinstance(model.features[1], torch.nn.Identity)
        assert model.features[12] is originals[12] and model.features[13] is originals[13]
        assert torch.allclose(model(x), before, atol=1e-5)
    assert list(model.features) == originals


def test_render_folds_batchnorm_on_cpu_and_says_so():
    torch.manual_seed(0)
    model = create_model("smallcnn", 2).eval()
    obj = channel("features.8", [0, 1])
    res = render(model, obj, size=32, steps=2, amp=False)
    assert res.settings["fold_bn"] and res.settings["folded_bn"] == 3  # all but the hooked
    off = render(model, obj, size=32, steps=2, amp=False, fold_bn=False)
    assert off.settings["folded_bn"] == 0
    assert torch.allclose(res.images, off.images, atol=1e-4)  # same render up to rounding
    assert all(isinstance(m, torch.nn.BatchNorm2d) for m in model.features[1::4])


def test_a_hooked_batchnorm_still_folds_and_reads_the_fused_output():
    """Rendering a filter's response (its BatchNorm's output) folds that pair too: the
    Identity in the BatchNorm's place outputs the fused conv, i.e. the same values."""
    torch.manual_seed(0)
    model = create_model("smallcnn", 2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(-1.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.features[:10](x)  # through the BatchNorm features.9
        with fold_batchnorm(model, keep={"features.9"}) as folded:
            assert folded == 4 and isinstance(model.features[9], torch.nn.Identity)
            seen = model.features[:10](x)  # ends at the Identity in the BatchNorm's place
    assert torch.allclose(seen, expected, atol=1e-5)
    res = render(model, channel("features.9", [0, 1]), size=32, steps=2, amp=False)
    assert res.settings["folded_bn"] == 4


def test_path_params_are_the_default_renders_settings(tiny_cnn):
    params = path_params("cpu", 32, 3)
    res = render(tiny_cnn, channel("6", [0]), size=32, steps=3)
    assert params["render.path"] == res.settings["path"] == "fast"
    assert params["render.amp"] == res.settings["amp"]
    assert params["render.stages"] == res.settings["stages"] == [[32, 3]]


def test_path_params_follow_an_explicit_amp(tiny_cnn):
    for amp, said in ((False, "off"), (True, "bfloat16")):
        params = path_params("cpu", 32, 3, amp)
        res = render(tiny_cnn, channel("6", [0]), size=32, steps=3, amp=amp)
        assert params["render.amp"] == res.settings["amp"] == said


@pytest.mark.parametrize(
    ("env", "capped"),
    [
        ({"ATEN_CPU_CAPABILITY": "avx2"}, True),
        ({"ATEN_CPU_CAPABILITY": "default"}, True),
        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, True),
        ({"DNNL_MAX_CPU_ISA": "avx512_core"}, True),
        ({"ATEN_CPU_CAPABILITY": "avx512"}, False),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, False),
        ({}, False),
    ],
)
def test_a_capped_isa_turns_bf16_off(
    env: dict[str, str], capped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A laptop without bf16 is stood in for by capping torch's ISA; the render must then take
    the fp32 path as it would there, whatever the CPU under the cap can do."""
    for key in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert isa_capped_below_bf16() is capped
    if capped:
        assert not cpu_bf16_supported() and not plan(CPU, 64, 10).amp


def _strided_stem_cnn() -> torch.nn.Sequential:
    """AlexNet's shape in small: an 11x11 stride-4 conv on the image, then two stride-1 convs."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 11, stride=4, padding=2),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 12, 3, padding=1),
    ).eval()


def test_the_fp32_cpu_path_uses_channels_last_space_to_depth_target_channels_and_fused_adam():
    fp32 = plan(CPU, 224, 100, native_bf16=False)
    assert not fp32.amp and fp32.channels_last and fp32.fold_bn
    assert fp32.space_to_depth and fp32.target_channels and fp32.fused_adam
    assert fp32.pool_first and fp32.settings()["pool_before_relu"]
    settings = fp32.settings()
    assert settings["channels_last"] and settings["space_to_depth"]
    assert settings["target_channels"] and settings["fused_adam"]
    bf16 = plan(CPU, 224, 100, native_bf16=True)  # the bf16 path as it was measured
    assert bf16.amp and not bf16.space_to_depth and bf16.target_channels
    gpu = plan(torch.device("cuda"), 224, 100, native_bf16=True)
    assert not (gpu.space_to_depth or gpu.target_channels or gpu.fused_adam)


@pytest.mark.parametrize("size", [224, 97, 64])
def test_space_to_depth_stem_keeps_the_outputs_and_restores_the_modules(size):
    model = _strided_stem_cnn()
    x = torch.rand(2, 3, size, size)
    stem = model[0]
    with torch.no_grad():
        before = model(x)
        with stem_space_to_depth(model) as n:
            assert n == 1 and isinstance(model[0], SpaceToDepthConv)
            assert isinstance(model[2], torch.nn.Conv2d)  # stride 1: nothing to gain
            after = model(x)
    assert model[0] is stem
    assert after.shape == before.shape and torch.allclose(after, before, atol=1e-5)
    with stem_space_to_depth(model, keep={"0"}) as n:  # a hooked stem stays what it is
        assert n == 0 and model[0] is stem


def test_target_channels_give_the_objectives_values_and_gradients():
    """Only the read channel of the hooked conv is computed; the objective and the image's
    gradient are the full conv's."""
    model = _strided_stem_cnn()
    obj = channel("4", [5, 0, 11])
    x = torch.rand(3, 3, 64, 64)
    grads, values = [], []
    for sliced in (False, True):
        xi = x.clone().requires_grad_(True)
        ctx = compute_target_channels(model, obj.reads if sliced else None)
        with ctx as n, LayerRecorder(model, obj.layers) as rec:
            assert n == int(sliced)
            assert isinstance(model[4], TargetChannelConv) == sliced
            value = obj(rec(xi))
        value.sum().backward()
        values.append(value.detach())
        grads.append(xi.grad)
    assert isinstance(model[4], torch.nn.Conv2d)
    assert torch.allclose(values[0], values[1], atol=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    with compute_target_channels(model, {"1": [0]}) as n:  # not a conv: left alone
        assert n == 0


def test_the_fp32_render_says_what_it_changed_and_renders_the_same_images():
    model = _strided_stem_cnn()
    obj = channel("4", [1, 2])
    fast = render(model, obj, size=64, steps=4, amp=False, **preset("tuned"))
    plain = render(
        model, obj, size=64, steps=4, amp=False, space_to_depth=False, target_channels=False,
        **preset("tuned"),
    )  # fmt: skip
    assert fast.settings["space_to_depth_convs"] == 1
    assert fast.settings["target_channel_convs"] == 1
    assert fast.settings["fused_adam"] and fast.settings["channels_last"]
    assert plain.settings["space_to_depth_convs"] == plain.settings["target_channel_convs"] == 0
    assert torch.allclose(fast.images, plain.images, atol=1e-3)
    assert torch.allclose(fast.activation, plain.activation, rtol=1e-3, atol=1e-5)


def test_pool_before_relu_keeps_outputs_and_gradients_and_restores_the_order():
    model = create_model("smallcnn", 2).eval()
    order = list(model.features)
    x = torch.rand(2, 3, 32, 32)

    def run():
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.sum().backward()
        return out.detach(), xi.grad

    before = run()
    with pool_before_relu(model, keep={"features.14"}) as n:
        assert n == 3  # the pair with the hooked ReLU features.14 stays
        assert isinstance(model.features[2], torch.nn.MaxPool2d)
        assert isinstance(model.features[14], torch.nn.ReLU)
        after = run()
    assert list(model.features) == order
    assert torch.allclose(after[0], before[0], atol=1e-6)
    assert torch.allclose(after[1], before[1], atol=1e-6)
    res = render(model, channel("features.12", [0, 1]), size=32, steps=2, amp=False)
    assert res.settings["pool_before_relu"] and res.settings["pools_before_relu"] == 4
