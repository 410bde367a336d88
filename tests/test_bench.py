"""The benchmark: its measuring tools, that it times the real training step, its report and CLI;
and the speed options it measures (train.channels_last, train.compile), run for one step on CPU."""

from __future__ import annotations

import dataclasses
import functools
import json
import time

import pytest
import torch

from heroportraits import bench
from heroportraits.bench import BenchOptions, bench_preset, count_flops, matmul_peak, synthetic_data
from heroportraits.cli import main as cli_main
from heroportraits.models import build_models, to_native
from heroportraits.models.conditioning import join_label_maps
from heroportraits.training import setup as train_setup
from heroportraits.training.distributed import unwrap
from heroportraits.training.presets import PRESETS, resolve_config
from heroportraits.training.trainer import Trainer

TINY = dict(
    steps=2,
    windows=2,
    warmup=1,
    data_size=64,
    sample_batch=32,
    sample_n=64,
    latency_reps=3,
    peak_size=512,
    isolate=False,
)


def test_count_flops_matches_matmul_formula():
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    assert count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    # a conv's backward counts input and weight gradients: twice the forward
    conv, x = torch.nn.Conv2d(3, 8, 3, bias=False), torch.randn(2, 3, 10, 10, requires_grad=True)
    fwd = count_flops(lambda: conv(x))
    both = count_flops(lambda: conv(x).sum().backward())
    assert fwd == 2 * 2 * 8 * 8 * 8 * 3 * 9 and both == 3 * fwd


def test_matmul_peak_is_a_plausible_rate_from_the_fastest_engine():
    cpu = torch.device("cpu")
    gemms = bench._gemms(cpu, torch.float32, 256)
    assert any(k.startswith("torch.mm") for k in gemms) and any("oneDNN" in k for k in gemms)
    for fn, flops in gemms.values():  # each candidate's FLOPs are what the counter sees
        assert count_flops(fn) == flops
    peak, source = matmul_peak(cpu, torch.float32, n=256, windows=2)
    assert 1e8 < peak < 1e14  # FLOP/s: more than a calculator, less than a datacentre
    assert source in gemms


def test_synthetic_data_has_native_grid_and_default_schema():
    data = synthetic_data(n=10, native_scale=2)
    assert data.images.shape == (10, 3, 64, 64) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[..., ::2, ::2], data.images[..., 1::2, 1::2])  # 2x2 blocks
    assert data.native_scale == 2 and data.vocab.names == ["gender", "hero_class", "palette"]
    assert (data.labels < torch.tensor(data.vocab.sizes)).all() and (data.labels >= 0).all()
    assert len(torch.unique(data.images[:, 0, ::2, ::2])) > 200  # random content, not a constant


def test_bench_drives_the_real_trainer_step(monkeypatch):
    calls = []
    real_step = Trainer.step

    def counting_step(self, next_batch, bare=False):
        calls.append(self)
        return real_step(self, next_batch, bare)

    monkeypatch.setattr(Trainer, "step", counting_step)
    r = bench_preset("smoke", BenchOptions(**TINY))
    # warm-up (full + bare), FLOP count, 2 windows x 1 step x (full + bare), one for the logging part
    assert len(calls) >= 1 + 1 + 1 + 2 * 2 + 1
    assert len({id(t) for t in calls}) == 1  # one Trainer, like one training run
    assert r.step_ms > 0 and r.bare_step_ms > 0 and r.step_gflop > 0
    assert r.achieved_gflops == pytest.approx(r.step_gflop / (r.step_ms / 1e3), rel=1e-6)
    assert 0 < r.peak_fraction == pytest.approx(r.achieved_gflops / r.peak_gflops, rel=1e-6)
    assert 0 <= r.overhead_share < 1
    assert set(r.parts_ms) == {"batch", "dropout", "augment", "ema", "logging"}
    assert r.parts_share == pytest.approx(sum(r.parts_ms.values()) / r.step_ms, rel=1e-6)
    assert r.peak_source and not r.channels_last and not r.compiled
    assert r.sample_per_s > 0 and r.latency_ms > 0 and r.host_peak_rss_mb > 50
    assert r.drawn_per_s > 0 and r.drawing == "as G draws them"  # smoke draws as G does: the figure says so
    assert r.images_per_s == pytest.approx(16 / (r.step_ms / 1e3), rel=1e-6)  # smoke: batch 16, n_dis 1


def test_bench_draws_an_adapted_preset_at_its_own_budget_not_at_random_pixels_colours():
    """The synthetic data's random pixels hold ~1,000 colours a portrait: fitted to them, an adapted drawing would
    quantise to hundreds of slots and time that (the demo's drawn speed read 89 portraits/s instead of ~300)."""
    adapted = ["draw.rgb_colours=6", "draw.palette_merge=7", "draw.adapt_colours=true"]
    r = bench_preset("smoke", BenchOptions(**{**TINY, "overrides": adapted}))
    assert r.drawn_per_s > 0 and r.drawing == "6 colours a portrait merged at 7 dE"


def test_bench_counts_the_flops_of_an_r1_step_on_raw_reals():
    """R1 differentiates D by its real input; with no augmentation or noise that input is a leaf, which the
    FLOP counter's module hooks refused under autograd.grad (the palette preset failed to bench)."""
    opts = BenchOptions(**{**TINY, "overrides": ["train.r1_gamma=1", "train.r1_every=1"]})
    assert bench_preset("smoke", opts).step_gflop > 0


class FakeClock:
    """bench's clock, made deterministic: time moves 1 us a reading, and `sleep` moves it on without waiting."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1e-6
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    strftime = staticmethod(time.strftime)


def test_overhead_share_sees_slow_batch_assembly(monkeypatch):
    """A data pipeline that costs 400 ms per batch must show up as time outside the networks. On a clock that
    only batch assembly moves, the figures are exact whatever the machine's load."""
    clock = FakeClock()
    monkeypatch.setattr(bench, "time", clock)
    real_sampler = train_setup.batch_sampler

    def slow_sampler(*args, **kwargs):
        inner = real_sampler(*args, **kwargs)

        def next_batch():
            clock.sleep(0.4)
            return inner()

        return next_batch

    monkeypatch.setattr(train_setup, "batch_sampler", slow_sampler)
    r = bench_preset("smoke", BenchOptions(**TINY))
    assert r.parts_ms["batch"] == pytest.approx(400, abs=0.01)  # one batch a step (n_dis 1)
    assert r.step_ms == pytest.approx(400, abs=0.01) and r.bare_step_ms < 0.01  # the bare step reuses one batch
    assert r.overhead_share == pytest.approx(1.0, abs=1e-4)


def test_bare_step_runs_the_networks_only():
    """Trainer.step(bare=True): G and D update, but no augmentation / noise, dropout or EMA update."""
    cfg = resolve_config("smoke", ["train.augment=color,translation", "train.attr_dropout=0.5"])
    setup = train_setup.setup_training(cfg, synthetic_data(n=32), torch.device("cpu"))
    t, batch = setup.trainer, setup.next_batch()
    seen = []
    t.d_input = lambda x, std: seen.append("d_input") or x
    t.drop_attributes = lambda y: seen.append("dropout") or y
    g0, ema0 = [p.clone() for p in t.G.parameters()], [p.clone() for p in t.G_ema.parameters()]
    t.step(lambda: batch, bare=True)
    assert seen == [] and t.iteration == 1
    assert all(torch.equal(a, b) for a, b in zip(ema0, t.G_ema.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    t.step(lambda: batch)  # the full step goes through all of them
    assert "d_input" in seen and "dropout" in seen
    assert not all(torch.equal(a, b) for a, b in zip(ema0, t.G_ema.parameters()))


def test_roof_is_the_best_of_probes_interleaved_with_the_steps():
    order = []
    roofs = iter([(3.0, "a"), (9.0, "b"), (1.0, "c")])
    timing = bench.time_steps(
        lambda: order.append("full"),
        lambda: order.append("bare"),
        lambda: order.append("roof") or next(roofs),
        torch.device("cpu"),
        calls=1,
        windows=2,
    )
    assert order == ["roof", "full", "bare", "roof", "full", "bare", "roof"]
    assert max(timing.roofs) == (9.0, "b") and len(timing.full) == len(timing.bare) == 2


def test_a_share_above_the_roof_is_marked_invalid(monkeypatch):
    """A roof probe slower than the step itself (a loaded machine) must not print as a share > 100 %."""
    probes = []
    monkeypatch.setattr(bench, "matmul_peak", lambda *a, **k: probes.append(1) or (1e3, "slow probe"))
    r = bench_preset("smoke", BenchOptions(**TINY))
    assert len(probes) == TINY["windows"] + 1  # one before the windows, one after each
    assert r.peak_fraction > 1 and not r.peak_valid
    text = bench.format_table(r)
    assert "INVALID" in text and "rerun on a quiet machine" in text
    ok = dataclasses.replace(r, peak_fraction=0.5, peak_valid=True, notes=[])
    assert "INVALID" not in bench.format_table(ok)


def test_cli_writes_json_report(project_root, capsys, monkeypatch):
    small = {k: v for k, v in TINY.items() if k not in ("steps", "windows", "isolate")}
    monkeypatch.setattr(bench, "BenchOptions", functools.partial(BenchOptions, **small))
    out = project_root / "b.json"
    code = cli_main(
        ["bench", "--preset", "smoke", "--steps", "2", "--windows", "1", "--no-isolate", "--json", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "preset smoke" in printed and "matmul roof" in printed and "portraits/s" in printed
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"] == torch.__version__
    (r,) = report["presets"]
    assert r["preset"] == "smoke" and r["compute_dtype"] == "float32" and r["step_ms"] > 0


def test_default_presets_per_device_and_profile_report(monkeypatch):
    assert bench.default_presets("cpu") == ["cpu", "dcgan", "resnet_full"]
    assert bench.default_presets("cuda") == ["gpu", "dcgan_gpu", "resnet_full_gpu"]
    text = bench.profile_preset("smoke", BenchOptions(**TINY), steps=1, rows=5)
    assert "forward FLOPs by layer" in text and "DCGANDiscriminator.body.0" in text
    assert "convolution" in text  # the operator table


def test_layer_flops_add_up_to_the_networks_forward():
    data = synthetic_data(n=16)
    s = train_setup.setup_training(resolve_config("smoke"), data, torch.device("cpu"))
    G, D = s.trainer.G, s.trainer.D
    x, y = s.next_batch()
    z = s.trainer.noise(x.shape[0])
    flops = bench.layer_flops(s.trainer, x, y)
    with torch.no_grad():
        total = count_flops(lambda: (G(z, y), D(x, y)))
    assert flops["DCGANGenerator"] + flops["DCGANDiscriminator"] == total
    layers = [v for k, v in flops.items() if k.startswith("DCGANGenerator.")]
    assert 0 < sum(layers) <= flops["DCGANGenerator"]


def test_layer_flops_of_a_flow_model_are_its_velocity_networks_forward():
    data = synthetic_data(n=16)
    s = train_setup.setup_training(resolve_config("smoke", {"model.arch": "unet"}), data, torch.device("cpu"))
    x, y = s.next_batch()
    flops = bench.layer_flops(s.trainer, x, y)
    with torch.no_grad():
        total = count_flops(lambda: s.trainer.G(x, y, torch.rand(x.shape[0])))
    assert s.trainer.D is None and flops["FlowGenerator"] == total > 0
    assert 0 < flops["FlowGenerator.net"] <= total


def test_cli_rejects_unknown_preset(capsys):
    assert cli_main(["bench", "--preset", "nope", "--no-isolate"]) == 2
    assert "nope" in capsys.readouterr().err


def test_default_json_path_names_the_machine(project_root):
    report = {"machine": {"gpu": None, "cpu": "Intel(R) Xeon(R) Processor", "cores": 2}}
    path = bench.default_json_path(report)
    assert path == project_root / "artifacts_gan" / "bench" / "bench_intel-xeon-2c.json"
    assert bench.machine_slug({"gpu": "NVIDIA H100 80GB HBM3", "cpu": "x", "cores": 16}) == "nvidia-h100-80gb-hbm3"


# ---------------------------------------------------------------- speed options, one step on CPU
def _state_keys(state: dict) -> dict:
    return {k: list(state[k]) for k in ("G", "D", "G_ema", "opt_G", "opt_D")}


def test_gpu_presets_turn_the_speed_options_on():
    for name in PRESETS:
        cfg = resolve_config(name)
        if name.endswith("_gpu") or name == "gpu":
            assert cfg.train.amp and cfg.train.channels_last and cfg.train.compile == "cuda", name
        else:
            assert cfg.train.compile == "off", name


def test_compile_cuda_mode_leaves_cpu_runs_uncompiled():
    cfg = resolve_config("smoke", ["train.compile=cuda", "train.channels_last=true"])
    s = train_setup.setup_training(cfg, synthetic_data(n=16), torch.device("cpu"))
    assert not s.trainer.compiled and not hasattr(s.trainer.G, "_orig_mod")
    assert train_setup.compile_enabled("cuda", torch.device("cuda"))
    assert train_setup.compile_enabled("on", torch.device("cpu"))


def test_channels_last_batches_hold_the_same_pixels():
    data = synthetic_data(n=32)
    cols = torch.arange(3)
    plain = train_setup.batch_sampler(data, 8, 32, cols, torch.Generator().manual_seed(1))
    nhwc = train_setup.batch_sampler(data, 8, 32, cols, torch.Generator().manual_seed(1), channels_last=True)
    (a, ya), (b, yb) = plain(), nhwc()
    assert b.is_contiguous(memory_format=torch.channels_last) and a.is_contiguous()
    assert torch.equal(a, b) and torch.equal(ya, yb)
    idx = torch.randint(32, (8,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, to_native(data.batch(idx)[0], 32))  # the native grid of the full-size batch


def test_joined_label_maps_keep_the_memory_format():
    h = torch.randn(2, 4, 5, 5)
    e = torch.randn(2, 3)
    plain, nhwc = join_label_maps(h, e), join_label_maps(h.contiguous(memory_format=torch.channels_last), e)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, nhwc) and torch.equal(plain[:, 4:, 2, 3], e)


@pytest.mark.parametrize("preset", ["smoke", "resnet_full"])
def test_channels_last_compiled_run_steps_and_saves_plain_checkpoints(preset, monkeypatch):
    """Both options on (compile through AOTAutograd, as Inductor would, but without code
    generation), R1 on every D update (double backward, which compiled graphs cannot do):
    the same function as the plain networks, one step runs, and the checkpoint has the
    plain run's keys and loads into plain models."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    small = ["model.g_width=8", "model.d_width=8", "model.z_dim=16", "train.batch_size=8"]
    common = [*small, "train.r1_gamma=1.0", "train.r1_every=1"]
    data = synthetic_data(n=32)
    runs = {}
    for fast in (False, True):
        cfg = resolve_config(
            preset, common + ([f"train.channels_last={str(fast).lower()}", f"train.compile={'on' if fast else 'off'}"])
        )
        runs[fast] = (cfg, train_setup.setup_training(cfg, data, torch.device("cpu")))
    (cfg, plain), (_, fast) = runs[False], runs[True]
    # spectral norm (resnet_full's D) keeps D eager: its compiled power iteration breaks two forwards per backward
    assert fast.trainer.compiled == (["G"] if cfg.model.d_spectral_norm else ["G", "D"]) and not plain.trainer.compiled
    conv = next(p for p in unwrap(fast.trainer.D).parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)

    (x, y), (x_cl, y_cl) = plain.next_batch(), fast.next_batch()  # same stream: same batch, NHWC
    assert torch.equal(x, x_cl) and torch.equal(y, y_cl) and x_cl.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # same initial weights, same function
        d_plain = unwrap(plain.trainer.D)(x, y)
        d_fast = fast.trainer.D(x_cl, y)
    torch.testing.assert_close(d_fast, d_plain, rtol=1e-4, atol=1e-4)

    stats = {k: s.trainer.step(s.next_batch) for k, s in (("plain", plain), ("fast", fast))}
    assert all(torch.isfinite(v).all() for st in stats.values() for v in st.values())
    assert stats["fast"]["r1"] > 0
    torch.testing.assert_close(stats["fast"]["d_loss"], stats["plain"]["d_loss"], rtol=1e-3, atol=1e-3)

    states = {k: train_setup.checkpoint_state(s, cfg, "synthetic") for k, s in (("plain", plain), ("fast", fast))}
    assert _state_keys(states["fast"]) == _state_keys(states["plain"])
    assert not any("_orig_mod" in k or k.startswith("module.") for k in states["fast"]["G"])
    G, D = build_models(cfg.model, data.vocab, plain.net_res)
    G.load_state_dict(states["fast"]["G"])
    D.load_state_dict(states["fast"]["D"])
    G.load_state_dict(states["fast"]["G_ema"])
    for name, p in G.named_parameters():  # the same Adam step as the plain run, up to rounding
        torch.testing.assert_close(p, plain.trainer.G_ema.get_parameter(name), rtol=0, atol=3 * cfg.train.g_lr)
