"""How fast is training and sampling on this machine, and how close to its physical limit?

    python -m heroportraits bench                          # cpu, dcgan, resnet_full (their *_gpu twins on CUDA)
    python -m heroportraits bench --preset resnet_full_gpu --device cuda --steps 50
    python -m heroportraits bench --preset cpu --profile   # where the step's time and FLOPs go

Every figure of a preset comes from one run of the real training step (`Trainer.step`,
built by `setup_training`, with that preset's regularisers, channels-last and
compile options on) on a synthetic in-memory dataset (random uint8 images, default
schema, native scale 2), so no prepared data is needed:
  * time per step and images/s: best of several timed windows (the machine may be
    shared; the best window is what the hardware can do, the median is also kept);
  * FLOPs per step, counted by `FlopCounterMode` over one regularisation period, and the
    achieved FLOP/s as a share of the fastest large GEMM timed in the same run (the roof):
    torch.mm (MKL / cuBLAS) and, on CPU, the same kind of GEMM as a 1x1 convolution
    (oneDNN, the library the networks' convolutions run in); the roof is the best of
    several probes interleaved with the step timings, and a share above 100 % (the probes
    saw a busier machine than the step) is reported as invalid, never as a figure;
  * the share of the step spent outside the networks: the bare step (`Trainer.step(...,
    bare=True)`: no augmentation, attribute dropout or EMA, one cached batch, no logging)
    timed window by window with the full step; each part is also timed alone, and their
    sum is a second, steadier estimate on a busy machine;
  * sampling through `sampling.Sampler` (the code the `sample` verb runs), from the run's own checkpoint
    dict: throughput at batch 256 and single-portrait latency of G alone (no sampling aids: the
    networks' speed), and throughput as the preset draws by default (its `draw` section, e.g. the
    demo's quantisation and refinement, stated beside the figure);
  * peak memory: host RSS and, on CUDA, torch.cuda.max_memory_allocated.
Each preset runs in a fresh process so its peak memory is its own. Results go to a
JSON file (default artifacts_gan/bench/bench_<machine>.json); docs/performance.md
holds the measured tables. Quality per wall time is a study's job (`study SPEC --budget minutes=M`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import multiprocessing
import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from heroportraits.data.attributes import DEFAULT_SCHEMA, Vocabulary
from heroportraits.data.dataset import PortraitData
from heroportraits.errors import HeroError
from heroportraits.models.config import FLOW_DRAW_FIELDS, DrawOptions, is_flow
from heroportraits.paths import project_root, write_json
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.config import Config
from heroportraits.training.distributed import unwrap
from heroportraits.training.ema import update_ema
from heroportraits.training.flow_trainer import FlowTrainer
from heroportraits.training.presets import preset_choices, resolve_config
from heroportraits.training.setup import TrainingSetup, checkpoint_state, resolve_device, setup_training
from heroportraits.training.trainer import Trainer

AnyTrainer = Trainer | FlowTrainer

# Benchmarked by default, per device type: the demo, the plain baseline, the full technique set.
DEFAULT_PRESETS = {"cpu": ("cpu", "dcgan", "resnet_full"), "cuda": ("gpu", "dcgan_gpu", "resnet_full_gpu")}


class BenchError(HeroError):
    """A benchmark request that cannot run (unknown preset, no CUDA, ...)."""


@dataclass
class BenchOptions:
    steps: int = 20  # timed training steps per variant (full and bare), split into windows
    windows: int = 4  # timed windows per variant; the best window is reported
    warmup: int = 3  # untimed steps first (allocator, kernel choice); at least one R1 period
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1"...
    threads: int = 0  # torch intra-op threads; 0 = torch's default (physical cores)
    data_size: int = 2048  # images in the synthetic in-memory dataset
    sample_batch: int = 256  # batch for sampling throughput
    sample_n: int = 1024  # portraits per sampling-throughput repeat
    latency_reps: int = 20  # single-portrait calls for the latency median
    peak_size: int = 0  # GEMM roof: n for an n x n product; 0 = 2048 on CPU, 8192 on GPU
    overrides: list[str] = field(default_factory=list)  # config overrides applied to every preset
    isolate: bool = True  # one fresh process per preset (own peak memory); off in tests


@dataclass
class PresetBench:
    preset: str
    device: str
    compute_dtype: str  # dtype the matmuls of the step run in (bf16 under autocast)
    batch_size: int
    network_resolution: int
    params_g: int
    params_d: int
    threads: int
    channels_last: bool  # train.channels_last: NHWC networks and batches
    compiled: list[str]  # the networks that ran torch.compile'd (train.compile): "G", "D"
    step_ms: float  # best window, mean per step
    step_ms_median: float  # median window
    images_per_s: float  # batch_size * n_dis per step (real images D sees) / step time
    step_gflop: float  # FLOPs of one step (averaged over a regularisation period)
    achieved_gflops: float
    peak_gflops: float  # measured GEMM roof in compute_dtype (the fastest engine)
    peak_source: str  # which GEMM gave the roof
    peak_fraction: float  # achieved / peak
    peak_valid: bool  # peak_fraction <= 1; False: the roof probes saw a busier machine than the step (see notes)
    bare_step_ms: float  # the step with everything outside the networks stubbed out
    overhead_share: float  # 1 - bare / full: share of the step outside the networks
    parts_ms: dict  # each outside-the-network part timed alone, per step
    parts_share: float  # sum(parts_ms) / step: the same share from the parts alone
    sample_per_s: float  # portraits/s at sample_batch through Sampler, G alone (no sampling aids)
    sample_batch: int
    latency_ms: float  # one portrait, median, G alone
    drawn_per_s: float  # portraits/s at sample_batch as the preset draws by default (its draw section)
    drawing: str  # that drawing, in words
    host_peak_rss_mb: float
    gpu_peak_mb: float | None
    seconds: float  # wall time of this preset's benchmark
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- machine and roofline
def machine_info(device: torch.device) -> dict:
    """What the figures were measured on (CPU model from /proc/cpuinfo, GPU name, versions)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "cpu": cpu,
        "cores": cores,
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def machine_slug(info: dict) -> str:
    """A file-name-safe machine name: the GPU, or the CPU model and core count."""
    name = info["gpu"] or f"{info['cpu']} {info['cores']}c"
    name = re.sub(r"\((r|tm)\)|processor|cpu", "", name, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "machine"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_windows(fn: Callable[[], object], device: torch.device, calls: int, windows: int) -> list[float]:
    """Seconds per call in each of `windows` windows of `calls` calls (synchronised at window edges)."""
    times = []
    for _ in range(windows):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
        times.append((time.perf_counter() - t0) / calls)
    return times


def _gemms(device: torch.device, dtype: torch.dtype, n: int) -> dict[str, tuple[Callable[[], object], float]]:
    """Large GEMMs through each engine the networks may use: name -> (call, FLOPs per call).

    torch.mm runs in MKL (CPU) or cuBLAS (GPU). On CPU the convolutions run in oneDNN
    instead, whose fp32 kernels can be ~2x faster than MKL's sgemm (on AMD CPUs MKL
    may not use AVX-512): the same kind of product as a channels-last 1x1 convolution,
    (2n pixels x n/2 channels) @ (n/2 x n/2), measures that engine's roof.
    """
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    out = {f"torch.mm {n}x{n}": (lambda: torch.mm(a, b), 2.0 * n**3)}
    if device.type == "cpu":
        k, pixels = max(n // 2, 1), 2 * n
        x = torch.randn(max(pixels // 64, 1), k, 8, 8, dtype=dtype, generator=g)  # (pixels / 64, k, 8, 8)
        x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(k, k, 1, 1, dtype=dtype, generator=g).contiguous(memory_format=torch.channels_last)
        out[f"1x1 conv (oneDNN) {x.shape[0] * 64}x{k}x{k}"] = (lambda: F.conv2d(x, w), 2.0 * x.shape[0] * 64 * k * k)
    return out


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int | None = None, windows: int = 5) -> tuple[float, str]:
    """(FLOP/s, which GEMM) of the fastest large GEMM: the practical roof of this device in `dtype`.

    n = 2048 on CPU (~17 GFLOP per torch.mm, ~0.1 s on one AVX-512 core), 8192 on GPU.
    Each candidate: the best of several windows, after warm-up (turbo, library heuristics).
    """
    n = n or (8192 if device.type == "cuda" else 2048)
    calls = 10 if device.type == "cuda" else 2
    best = (0.0, "")
    for name, (fn, flops) in _gemms(device, dtype, n).items():
        _best_windows(fn, device, calls, 1)  # warm-up
        best = max(best, (flops / min(_best_windows(fn, device, calls, windows)), name))
    return best


def count_flops(fn: Callable[[], object], calls: int = 1) -> float:
    """FLOPs per call of fn (matmuls and convolutions, forward and backward), averaged over `calls`."""
    with FlopCounterMode(display=False) as counter:
        for _ in range(calls):
            fn()
    return counter.get_total_flops() / calls


def host_peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


# ---------------------------------------------------------------- synthetic data
def synthetic_data(
    n: int = 2048, resolution: int = 64, native_scale: int = 2, seed: int = 0, device="cpu"
) -> PortraitData:
    """Random uint8 portraits on a native grid (nearest-upscaled by native_scale), default schema labels.

    Content does not matter for speed; shape, dtype, pixel grid and label layout do.
    """
    g = torch.Generator().manual_seed(seed)
    grid = resolution // native_scale
    small = torch.randint(0, 256, (n, 3, grid, grid), dtype=torch.uint8, generator=g)
    images = small.repeat_interleave(native_scale, 2).repeat_interleave(native_scale, 3)  # (n, 3, R, R)
    vocab = Vocabulary(DEFAULT_SCHEMA)
    labels = torch.stack([torch.randint(0, k, (n,), generator=g) for k in vocab.sizes], dim=1)  # (n, A)
    meta = {"name": "synthetic", "native_scale": native_scale, "resolution": resolution}
    return PortraitData(images.contiguous(), labels, vocab, meta).to(device)


# ---------------------------------------------------------------- one preset
def _compute_dtype(trainer: AnyTrainer) -> torch.dtype:
    """The dtype the step's matmuls run in: autocast's when it is on, else the parameters'."""
    ac = getattr(trainer, "autocast", None)
    if ac is not None and getattr(ac, "_enabled", False):
        return ac.fast_dtype
    return next(trainer.G.parameters()).dtype


def _period(cfg: Config) -> int:
    """Steps after which the work per step repeats (lazy R1 runs every r1_every D updates)."""
    tc = cfg.train
    if getattr(tc, "r1_gamma", 0) <= 0:
        return 1
    n_dis = getattr(tc, "n_dis", 1)
    return math.lcm(tc.r1_every, n_dis) // n_dis


def _logger(log_every: int, columns: tuple[str, ...]) -> Callable[[dict], None]:
    """What train() does every log_every steps: read the stats on the host, append a CSV row."""
    buf, count = io.StringIO(), [0]

    def log(stats: dict) -> None:
        count[0] += 1
        if count[0] % log_every == 0:
            values = {k: round(float(v.item()), 5) for k, v in stats.items()}
            csv.writer(buf).writerow([count[0], *(values.get(k, 0.0) for k in columns)])

    return log


def _eager(trainer: AnyTrainer) -> contextlib.AbstractContextManager:
    """Run compiled networks eagerly (FLOP counting needs the individual ops)."""
    return torch.compiler.set_stance("force_eager") if trainer.compiled else contextlib.nullcontext()


def _setup(name: str, opts: BenchOptions) -> tuple[Config, torch.device, PortraitData, TrainingSetup]:
    """(config, device, synthetic data, setup_training's objects) for one preset."""
    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    cfg = resolve_config(name, list(opts.overrides))
    cfg.train.device = opts.device
    device = resolve_device(opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {opts.device}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    data = synthetic_data(opts.data_size, device=device, seed=cfg.train.seed)
    return cfg, device, data, setup_training(cfg, data, device)


@dataclass
class StepTiming:
    """Seconds per step of each window (full and bare step), and the roof probes taken between them."""

    full: list[float]
    bare: list[float]
    roofs: list[tuple[float, str]]  # (FLOP/s, GEMM) of each probe


def time_steps(
    full_step: Callable[[], object],
    bare_step: Callable[[], object],
    roof: Callable[[], tuple[float, str]],
    device: torch.device,
    calls: int,
    windows: int,
) -> StepTiming:
    """Full and bare steps window by window, with a roof probe before the first window and after
    each: all three see the same machine load, and the roof is the best of windows + 1 probes
    (one probe on a busy moment cannot make it fall below what the step itself achieves)."""
    t = StepTiming([], [], [roof()])
    for _ in range(windows):
        t.full += _best_windows(full_step, device, calls, 1)
        t.bare += _best_windows(bare_step, device, calls, 1)
        t.roofs.append(roof())
    return t


def _parts_alone(trainer: AnyTrainer, setup: TrainingSetup, batch: tuple, cfg: Config, device, reps: int) -> dict:
    """Each part of the step outside the networks timed alone, in ms per step (augmentation: a GAN's D only)."""
    tc, n_dis = cfg.train, getattr(cfg.train, "n_dis", 1)
    real, y = batch

    def per_step(fn: Callable[[], object], times_per_step: float) -> float:
        return min(_best_windows(fn, device, reps, 3)) * times_per_step * 1e3

    with torch.no_grad():
        parts = {
            "batch": per_step(setup.next_batch, n_dis),
            "dropout": per_step(lambda: trainer.drop_attributes(y), n_dis),
        }
        if trainer.D is not None:
            fake, noise_std = trainer.G(trainer.noise(real.shape[0]), y), trainer.noise_std()
            parts["augment"] = per_step(lambda: trainer.d_input(fake, noise_std), 2 * n_dis + 1)
        parts["ema"] = per_step(lambda: update_ema(trainer.G_ema, unwrap(trainer.G), 0.999), 1)
    stats = trainer.step(setup.next_batch)
    parts["logging"] = per_step(lambda: _logger(1, trainer.stats)(stats), 1 / tc.log_every)
    return parts


def _sampling(setup: TrainingSetup, cfg: Config, opts: BenchOptions) -> tuple[float, float, float, str]:
    """(portraits/s at opts.sample_batch and single-portrait latency in s of G alone, portraits/s as the preset
    draws by default, that drawing in words) through `Sampler` loaded from the run's own checkpoint dict (the code
    `sample` runs)."""
    device = setup.device
    # G alone: no colours, no guidance by D; a flow model keeps its run's solver (its G is the sampler)
    alone = DrawOptions(**{f: getattr(cfg.draw, f) for f in FLOW_DRAW_FIELDS}) if is_flow(cfg.model) else DrawOptions()
    state = checkpoint_state(setup, cfg, "synthetic")
    # Random pixels hold ~1,000 colours a portrait: no colour use a drawing should fit (draw.adapt_colours would
    # quantise to hundreds of slots), so the preset's own budget is drawn, as for data of unknown colours.
    state["dataset"]["colours"] = None
    sampler = Sampler(state, device, alone)
    labels = sampler.draw_conditions(opts.sample_n, seed=0)
    sampler.generate_from_labels(labels[: opts.sample_batch], batch_size=opts.sample_batch)  # warm-up
    sample_s = min(
        _best_windows(lambda: sampler.generate_from_labels(labels, batch_size=opts.sample_batch), device, 1, 3)
    )
    one = labels[:1]
    sampler.generate_from_labels(one)
    latency = statistics.median(_best_windows(lambda: sampler.generate_from_labels(one), device, 1, opts.latency_reps))
    sampler.use(None)  # the preset's own drawing, on one batch (refinement makes it many times slower)
    batch = labels[: opts.sample_batch]
    drawn_s = min(
        _best_windows(lambda: sampler.generate_from_labels(batch, batch_size=opts.sample_batch), device, 1, 2)
    )
    return opts.sample_n / sample_s, latency, len(batch) / drawn_s, sampler.describe_drawing()


def _roof_notes(roofs: list[tuple[float, str]], fraction: float) -> list[str]:
    """What a reader must know about the roof: it moved (a shared machine), or the step beat it."""
    peak, low = max(roofs)[0], min(roofs)[0]
    notes = []
    if peak > 1.25 * low:
        notes.append(
            f"GEMM roof varied {low / 1e9:.0f}-{peak / 1e9:.0f} GFLOP/s during the run: "
            f"the machine was shared; figures are best windows"
        )
    if fraction > 1:
        notes.append(
            f"INVALID roof share: the step achieved {fraction:.0%} of the best of {len(roofs)} roof probes, "
            f"so the probes ran on a busier machine than the step; rerun on a quiet machine"
        )
    return notes


def _time_training_step(trainer: AnyTrainer, setup: TrainingSetup, cfg: Config, opts: BenchOptions):
    """(FLOPs per step, StepTiming, compute dtype, the bare step's cached batch, steps per window)."""
    period = _period(cfg)
    calls = period * max(1, round(opts.steps / opts.windows / period))  # steps per window
    log = _logger(cfg.train.log_every, trainer.stats)
    batch = setup.next_batch()

    def full_step() -> None:
        log(trainer.step(setup.next_batch))

    def bare_step() -> None:  # the networks' work alone, on one cached batch
        trainer.step(lambda: batch, bare=True)

    # ---- warm-up: a whole R1 period, so every variant of the step (and of a compiled graph) has run
    for _ in range(max(opts.warmup, period, 1)):
        full_step()
        bare_step()

    # ---- FLOPs of one step, averaged over a regularisation period
    with _eager(trainer):
        flops = count_flops(full_step, period)

    # ---- full and bare steps, window by window, with the roof probed between them
    dtype = _compute_dtype(trainer)

    def roof() -> tuple[float, str]:
        return matmul_peak(setup.device, dtype, opts.peak_size or None, windows=2)

    timing = time_steps(full_step, bare_step, roof, setup.device, calls, opts.windows)
    return flops, timing, dtype, batch, calls


def bench_preset(name: str, opts: BenchOptions) -> PresetBench:
    """Benchmark one preset's training step and sampling on this machine (see module docstring)."""
    t_start = time.perf_counter()
    cfg, device, _, setup = _setup(name, opts)
    tc, trainer = cfg.train, setup.trainer
    flops, timing, dtype, batch, calls = _time_training_step(trainer, setup, cfg, opts)
    step_s, bare_s = min(timing.full), min(timing.bare)
    parts = _parts_alone(trainer, setup, batch, cfg, device, reps=max(3, calls))
    sample_per_s, latency, drawn_per_s, drawing = _sampling(setup, cfg, opts)

    peak, peak_source = max(timing.roofs)
    fraction = flops / step_s / peak
    return PresetBench(
        preset=name,
        device=str(device),
        compute_dtype=str(dtype).replace("torch.", ""),
        batch_size=tc.batch_size,
        network_resolution=setup.net_res,
        params_g=sum(p.numel() for p in unwrap(trainer.G).parameters()),
        params_d=sum(p.numel() for p in unwrap(trainer.D).parameters()) if trainer.D is not None else 0,
        threads=torch.get_num_threads(),
        channels_last=tc.channels_last,
        compiled=trainer.compiled,
        step_ms=step_s * 1e3,
        step_ms_median=statistics.median(timing.full) * 1e3,
        images_per_s=tc.batch_size * getattr(tc, "n_dis", 1) / step_s,
        step_gflop=flops / 1e9,
        achieved_gflops=flops / step_s / 1e9,
        peak_gflops=peak / 1e9,
        peak_source=peak_source,
        peak_fraction=fraction,
        peak_valid=fraction <= 1,
        bare_step_ms=bare_s * 1e3,
        overhead_share=max(0.0, 1 - bare_s / step_s),
        parts_ms=parts,
        parts_share=sum(parts.values()) / (step_s * 1e3),
        sample_per_s=sample_per_s,
        sample_batch=opts.sample_batch,
        latency_ms=latency * 1e3,
        drawn_per_s=drawn_per_s,
        drawing=drawing,
        host_peak_rss_mb=host_peak_rss_mb(),
        gpu_peak_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        seconds=time.perf_counter() - t_start,
        notes=_roof_notes(timing.roofs, fraction),
    )


# ---------------------------------------------------------------- where the time goes
def layer_flops(trainer: AnyTrainer, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Forward FLOPs of the step's networks by module ("DCGANDiscriminator.body.0": FLOPs): a GAN's G(z, y) and
    D(x, y); a flow model's velocity at x and random times.

    Forward only: a convolution's backward costs about twice its forward (input and
    weight gradients), so the shares of the training step are about the same.
    """
    G = unwrap(trainer.G)
    with torch.no_grad(), FlopCounterMode(display=False, depth=4) as counter:
        if trainer.D is None:
            G(x, y, torch.rand(x.shape[0], device=x.device))
        else:
            G(trainer.noise(x.shape[0]), y)
            unwrap(trainer.D)(x, y)
    return {
        name: float(sum(ops.values()))
        for name, ops in counter.get_flop_counts().items()
        if name != "Global" and sum(ops.values()) > 0
    }


def profile_preset(name: str, opts: BenchOptions, steps: int = 4, rows: int = 20) -> str:
    """Where one preset's training step spends its time (torch.profiler, operators by self time,
    grouped by input shape) and its FLOPs (by layer): a text report."""
    from torch.profiler import ProfilerActivity, profile

    cfg, device, _, setup = _setup(name, opts)
    trainer, next_batch = setup.trainer, setup.next_batch
    for _ in range(max(opts.warmup, _period(cfg))):
        trainer.step(next_batch)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(steps):
            trainer.step(next_batch)
        _sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    ops = prof.key_averages(group_by_input_shape=True).table(sort_by=sort, row_limit=rows, max_name_column_width=40)

    real, y = next_batch()
    with _eager(trainer):
        flops = layer_flops(trainer, real, y)
    total = sum(v for k, v in flops.items() if "." not in k)  # the two networks
    lines = [f"preset {name}: forward FLOPs by layer (batch {real.shape[0]}; backward adds ~2x)"]
    lines += [f"  {k:<44} {v / 1e9:8.3f} GFLOP  {v / total:6.1%}" for k, v in flops.items()]
    return "\n".join([*lines, "", f"preset {name}: {steps} training steps, operators by self time", ops])


# ---------------------------------------------------------------- report
def format_table(r: PresetBench) -> str:
    parts = ", ".join(f"{k} {v:.2f} ms" for k, v in r.parts_ms.items())
    gpu = f", GPU {r.gpu_peak_mb:,.0f} MB" if r.gpu_peak_mb is not None else ""
    rows = [
        ("training step", f"{r.step_ms:.1f} ms  (median window {r.step_ms_median:.1f} ms)"),
        ("training throughput", f"{r.images_per_s:,.0f} images/s"),
        ("FLOPs per step", f"{r.step_gflop:.2f} GFLOP"),
        (
            "achieved",
            f"{r.achieved_gflops:,.1f} GFLOP/s = {r.peak_fraction:.0%}{'' if r.peak_valid else ' (INVALID, see note)'} "
            f"of the measured {r.compute_dtype} matmul roof ({r.peak_gflops:,.0f} GFLOP/s, {r.peak_source})",
        ),
        (
            "outside the networks",
            f"{r.overhead_share:.1%} of the step (full minus bare step "
            f"{r.bare_step_ms:.1f} ms); parts alone {r.parts_share:.1%}",
        ),
        ("  parts alone", parts),
        (f"sampling, G alone (batch {r.sample_batch})", f"{r.sample_per_s:,.0f} portraits/s"),
        ("single-portrait latency", f"{r.latency_ms:.1f} ms (G alone)"),
        ("sampling as drawn by default", f"{r.drawn_per_s:,.0f} portraits/s ({r.drawing})"),
        ("peak memory", f"host {r.host_peak_rss_mb:,.0f} MB{gpu}"),
    ]
    layout = ", channels-last" if r.channels_last else ""
    layout += f", compiled {'+'.join(r.compiled)}" if r.compiled else ""
    head = (
        f"preset {r.preset}  ({r.device}, {r.compute_dtype}{layout}, batch {r.batch_size}, "
        f"{r.network_resolution}x{r.network_resolution} network grid, {r.threads} threads, "
        f"G {r.params_g / 1e6:.2f}M / D {r.params_d / 1e6:.2f}M params)"
    )
    width = max(len(k) for k, _ in rows)
    lines = [head, *(f"  {k:<{width}}  {v}" for k, v in rows), *(f"  note: {n}" for n in r.notes)]
    return "\n".join(lines)


def default_presets(device_type: str = "cpu") -> list[str]:
    return [p for p in DEFAULT_PRESETS.get(device_type, DEFAULT_PRESETS["cpu"]) if p in preset_choices()]


def run_bench(
    presets: list[str] | None = None, opts: BenchOptions | None = None, echo: Callable[[str], None] | None = print
) -> dict:
    """Benchmark each preset (in its own process when opts.isolate) and return the JSON report."""
    opts = opts or BenchOptions()
    device = resolve_device(opts.device)
    presets = list(presets or default_presets(device.type))
    unknown = [p for p in presets if p not in preset_choices()]
    if unknown:
        raise BenchError(f"unknown preset(s) {unknown}; choose from {preset_choices()}")
    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    results = []
    for name in presets:
        if opts.isolate:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                r = pool.submit(bench_preset, name, opts).result()
        else:
            r = bench_preset(name, opts)
        results.append(r)
        if echo:
            echo(format_table(r) + "\n")
    return {
        "machine": machine_info(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "options": asdict(opts),
        "presets": [asdict(r) for r in results],
    }


def default_json_path(report: dict) -> Path:
    return project_root() / "artifacts_gan" / "bench" / f"bench_{machine_slug(report['machine'])}.json"


def save_report(report: dict, path: str | Path | None = None) -> Path:
    path = Path(path) if path else default_json_path(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
    return path
