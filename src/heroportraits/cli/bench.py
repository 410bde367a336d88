"""The `bench` verb."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from heroportraits.bench import (
    BenchError,
    BenchOptions,
    default_json_path,
    default_presets,
    machine_info,
    machine_slug,
    plot_quality,
    profile_preset,
    quality_run,
    run_bench,
    save_report,
)
from heroportraits.cli.options import add_assignments, add_verb
from heroportraits.training.setup import resolve_device


# ---------------------------------------------------------------- CLI
def add_bench(sub) -> None:
    p = add_verb(
        sub,
        "bench",
        _run_bench,
        help="measure training/sampling speed (and FD per wall time) on this machine",
        description="Benchmark the real training step of each preset on a synthetic in-memory dataset: "
        "time per step, images/s, achieved FLOP/s against a matmul roof measured in the same run, the "
        "share of the step spent outside the networks, sampling speed, latency and peak memory. "
        "Writes artifacts_gan/bench/bench_<machine>.json. With --quality MINUTES, trains a preset on a "
        "real dataset for that wall time and reports FD at intervals instead.",
    )
    p.add_argument(
        "--preset",
        dest="presets",
        action="extend",
        nargs="+",
        metavar="NAME",
        help=f"presets to benchmark (default: {' '.join(default_presets('cpu'))}; on CUDA "
        f"{' '.join(default_presets('cuda'))}); with --quality, the one preset to train (default cpu)",
    )
    p.add_argument("--json", help="output JSON (default artifacts_gan/bench/bench_<machine>.json)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per variant (default 20)")
    p.add_argument("--windows", type=int, default=4, help="timed windows (best is reported; default 4)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    add_assignments(
        p, "overrides", "FIELD=VALUE", "config override applied to every preset, e.g. --set train.batch_size=128"
    )
    p.add_argument(
        "--no-isolate", action="store_true", help="run every preset in this process (faster start, shared peak memory)"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead: where each preset's step spends its time (torch.profiler operators) and FLOPs (by layer)",
    )
    p.add_argument(
        "--quality", type=float, metavar="MINUTES", help="train for MINUTES on --dataset and report FD at intervals"
    )
    p.add_argument("--dataset", default="procedural", help="dataset for --quality (default procedural)")
    p.add_argument("--intervals", type=int, default=5, help="FD measurements during --quality (default 5)")


def _run_bench(args: argparse.Namespace) -> None:
    if args.steps < 1 or args.windows < 1:
        raise BenchError(f"--steps and --windows must be >= 1 (got {args.steps}, {args.windows})")
    if args.quality is not None:
        presets = args.presets or ["cpu"]
        if len(presets) != 1:
            raise BenchError(f"--quality trains one preset; got {presets}")
        print(
            f"training {presets[0]} on {args.dataset} for {args.quality} min; FD every "
            f"{args.quality / args.intervals:.2f} min"
        )
        quality = quality_run(
            args.quality, args.dataset, presets[0], args.intervals, overrides=args.overrides, device=args.device
        )
        report = {
            "machine": machine_info(resolve_device(args.device)),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "quality": quality,
        }
        path = (
            Path(args.json)
            if args.json
            else default_json_path(report).with_name(f"quality_{machine_slug(report['machine'])}.json")
        )
        save_report(report, path)
        print(f"wrote {path} and {plot_quality(quality, path.with_suffix('.png'))}")
        return
    opts = BenchOptions(
        steps=args.steps,
        windows=args.windows,
        device=args.device,
        threads=args.threads,
        overrides=list(args.overrides),
        isolate=not args.no_isolate,
    )
    if args.profile:
        for name in args.presets or default_presets(resolve_device(args.device).type):
            print(profile_preset(name, opts) + "\n")
        return
    report = run_bench(args.presets, opts)
    print(f"wrote {save_report(report, args.json)}")


def add_verbs(sub) -> None:
    add_bench(sub)
