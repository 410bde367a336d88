"""The benchmark: its measuring tools, that it times the real training step, its report and CLI."""

from __future__ import annotations

import functools
import json
import time

import pytest
import torch

from heroportraits import bench, train
from heroportraits.bench import BenchOptions, bench_preset, count_flops, matmul_peak, synthetic_data
from heroportraits.cli import main as cli_main
from heroportraits.config import resolve_config

TINY = dict(steps=2, windows=2, warmup=1, data_size=64, sample_batch=32, sample_n=64, latency_reps=3, peak_size=512, isolate=False)


def test_count_flops_matches_matmul_formula():
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    assert count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    # a conv's backward counts input and weight gradients: twice the forward
    conv, x = torch.nn.Conv2d(3, 8, 3, bias=False), torch.randn(2, 3, 10, 10, requires_grad=True)
    fwd = count_flops(lambda: conv(x))
    both = count_flops(lambda: conv(x).sum().backward())
    assert fwd == 2 * 2 * 8 * 8 * 8 * 3 * 9 and both == 3 * fwd


def test_matmul_peak_is_a_plausible_rate():
    peak = matmul_peak(torch.device("cpu"), torch.float32, n=256, windows=2)
    assert 1e8 < peak < 1e14  # FLOP/s: more than a calculator, less than a datacentre


def test_synthetic_data_has_native_grid_and_default_schema():
    data = synthetic_data(n=10, native_scale=2)
    assert data.images.shape == (10, 3, 64, 64) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[..., ::2, ::2], data.images[..., 1::2, 1::2])  # 2x2 blocks
    assert data.native_scale == 2 and data.vocab.names == ["gender", "hero_class", "palette"]
    assert (data.labels < torch.tensor(data.vocab.sizes)).all() and (data.labels >= 0).all()
    assert len(torch.unique(data.images[:, 0, ::2, ::2])) > 200  # random content, not a constant


def test_bench_drives_the_real_trainer_step(monkeypatch):
    calls = []
    real_step = train.Trainer.step

    def counting_step(self, next_batch):
        calls.append(self)
        return real_step(self, next_batch)

    monkeypatch.setattr(train.Trainer, "step", counting_step)
    r = bench_preset("smoke", BenchOptions(**TINY))
    # warm-up (full + bare), FLOP count, 2 windows x 1 step x (full + bare), one for the logging part
    assert len(calls) >= 1 + 1 + 1 + 2 * 2 + 1
    assert len({id(t) for t in calls}) == 1  # one Trainer, like one training run
    assert r.step_ms > 0 and r.bare_step_ms > 0 and r.step_gflop > 0
    assert r.achieved_gflops == pytest.approx(r.step_gflop / (r.step_ms / 1e3), rel=1e-6)
    assert 0 < r.peak_fraction == pytest.approx(r.achieved_gflops / r.peak_gflops, rel=1e-6)
    assert 0 <= r.overhead_share < 1
    assert set(r.parts_ms) == {"batch", "dropout", "augment", "ema", "logging"}
    assert r.sample_per_s > 0 and r.latency_ms > 0 and r.host_peak_rss_mb > 50
    assert r.images_per_s == pytest.approx(16 / (r.step_ms / 1e3), rel=1e-6)  # smoke: batch 16, n_dis 1


def test_overhead_share_sees_slow_batch_assembly(monkeypatch):
    """A data pipeline that costs 150 ms per batch must show up as time outside the networks."""
    real_sampler = train.batch_sampler

    def slow_sampler(*args, **kwargs):
        inner = real_sampler(*args, **kwargs)

        def next_batch():
            time.sleep(0.15)
            return inner()

        return next_batch

    monkeypatch.setattr(train, "batch_sampler", slow_sampler)
    r = bench_preset("smoke", BenchOptions(**TINY))
    assert r.parts_ms["batch"] >= 150
    assert r.overhead_share > 0.3
    assert r.step_ms - r.bare_step_ms >= 100


def test_bare_step_stubs_are_removed_afterwards():
    data = synthetic_data(n=32)
    setup = train.setup_training(resolve_config("smoke"), data, torch.device("cpu"))
    t = setup.trainer
    batch = setup.next_batch()
    with bench._bare(t, batch) as cached:
        assert cached() is batch
        x = torch.randn(2, 3, 8, 8)
        assert t.d_input(x, 0.5) is x
    assert "d_input" not in vars(t) and "drop_attributes" not in vars(t)
    assert train.update_ema is not None and train.update_ema.__module__ == "heroportraits.ema"


def test_cli_writes_json_report(project_root, capsys, monkeypatch):
    small = {k: v for k, v in TINY.items() if k not in ("steps", "windows", "isolate")}
    monkeypatch.setattr(bench, "BenchOptions", functools.partial(BenchOptions, **small))
    out = project_root / "b.json"
    code = cli_main(["bench", "--preset", "smoke", "--steps", "2", "--windows", "1", "--no-isolate",
                     "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "preset smoke" in printed and "matmul roof" in printed and "portraits/s" in printed
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"] == torch.__version__
    (r,) = report["presets"]
    assert r["preset"] == "smoke" and r["compute_dtype"] == "float32" and r["step_ms"] > 0


def test_cli_rejects_unknown_preset(capsys):
    assert cli_main(["bench", "--preset", "nope", "--no-isolate"]) == 2
    assert "nope" in capsys.readouterr().err


def test_default_json_path_names_the_machine(project_root):
    report = {"machine": {"gpu": None, "cpu": "Intel(R) Xeon(R) Processor", "cores": 2}}
    path = bench.default_json_path(report)
    assert path == project_root / "artifacts_gan" / "bench" / "bench_intel-xeon-2c.json"
    assert bench.machine_slug({"gpu": "NVIDIA H100 80GB HBM3", "cpu": "x", "cores": 16}) == "nvidia-h100-80gb-hbm3"


def test_quality_run_trains_in_intervals_and_reports_fd(toy_dataset, monkeypatch):
    from heroportraits import evaluate

    seen = []

    def fake_quick_fd(images, rows, dataset_name, n=500):
        seen.append((images.shape, len(rows), dataset_name))
        return {"n": len(images), "fd": 100.0 / len(seen), "cond_acc": 0.5}

    monkeypatch.setattr(evaluate, "quick_fd", fake_quick_fd)
    # smoke has 6 steps; 2 ms per interval stops each chunk after its first step
    q = bench.quality_run(0.0001, toy_dataset, "smoke", intervals=3, n=20, progress=False, echo=None)
    assert [p["step"] for p in q["points"]] == [1, 2, 3]
    assert all(s == ((20, 64, 64, 3), 20, toy_dataset) for s in seen)
    assert [p["fd"] for p in q["points"]] == [100.0, 50.0, 100.0 / 3]
    assert q["points"][-1]["minutes"] >= q["points"][0]["minutes"]
