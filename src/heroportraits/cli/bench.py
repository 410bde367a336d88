"""The `bench` verb."""

from __future__ import annotations

import argparse

from heroportraits import bench
from heroportraits.cli.options import add_assignments, add_verb
from heroportraits.training.setup import resolve_device


def add_bench(sub) -> None:
    p = add_verb(sub, "bench", _run_bench)
    p.add_argument(
        "--preset",
        dest="presets",
        action="extend",
        nargs="+",
        metavar="NAME",
        help=f"presets to benchmark (default: {' '.join(bench.default_presets('cpu'))}; on CUDA "
        f"{' '.join(bench.default_presets('cuda'))})",
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


def _run_bench(args: argparse.Namespace) -> None:
    """Measure training/sampling speed on this machine.

    Benchmark the real training step of each preset on a synthetic in-memory dataset: time per step, images/s,
    achieved FLOP/s against a matmul roof measured in the same run, the share of the step spent outside the
    networks, sampling speed (G alone, and as the preset draws by default), latency and peak memory. Writes
    artifacts_gan/bench/bench_<machine>.json. Quality per wall time is a study's job: python -m heroportraits
    study SPEC --budget minutes=M.
    """
    if args.steps < 1 or args.windows < 1:
        raise bench.BenchError(f"--steps and --windows must be >= 1 (got {args.steps}, {args.windows})")
    opts = bench.BenchOptions(
        steps=args.steps,
        windows=args.windows,
        device=args.device,
        threads=args.threads,
        overrides=list(args.overrides),
        isolate=not args.no_isolate,
    )
    if args.profile:
        for name in args.presets or bench.default_presets(resolve_device(args.device).type):
            print(bench.profile_preset(name, opts) + "\n")
        return
    report = bench.run_bench(args.presets, opts)
    print(f"wrote {bench.save_report(report, args.json)}")


def add_verbs(sub) -> None:
    add_bench(sub)
