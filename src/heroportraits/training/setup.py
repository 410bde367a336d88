"""Building a run: `setup_training` makes everything one training process needs from the config
and the data's own metadata; `checkpoint_state` is the one checkpoint dict of a run, and
`restore` loads it back. `train()`, the benchmark and every rank of a multi-GPU run
(distributed.py) go through these.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.dataset import PortraitData, limit_images
from heroportraits.data.palette_labels import palette_check_refusal, rules_reading
from heroportraits.errors import HeroError
from heroportraits.models import build_models, conditioning_vocab, network_resolution, to_native
from heroportraits.models.layout import memory_layout
from heroportraits.models.palette_output import draw_in_colours
from heroportraits.paths import dataset_dir
from heroportraits.training import distributed
from heroportraits.training.checkpoint import RUN_CHECKPOINTS, CheckpointError, check_vocabulary, load_checkpoint
from heroportraits.training.config import DEVICE_PATTERN, Config, ConfigError
from heroportraits.training.distil import draw_pairs, load_teacher, pair_sampler, start_from_teacher
from heroportraits.training.distributed import DistInfo
from heroportraits.training.flow_trainer import FlowTrainer
from heroportraits.training.pixel_art import quantise_reals, training_palette
from heroportraits.training.trainer import Trainer


class DeviceError(HeroError):
    """A device name that is none, or a device this machine does not have."""


def resolve_device(name: str | torch.device) -> torch.device:
    """`auto` (cuda if available, else cpu), cpu, cuda, cuda:N or mps, checked against this machine: a name that
    is no device, or one this machine lacks, is one line saying what to use instead."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not DEVICE_PATTERN.fullmatch(str(name)):
        raise DeviceError(f"device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r}: this machine has no CUDA GPU that torch can use; use cpu (or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), cuda:0 and up")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r}: this machine has no Apple GPU (MPS) that torch can use; use cpu (or auto)")
    return device


def label_mix(labels: torch.Tensor) -> dict:
    """Joint label rows and their counts: what `sample` draws conditions from."""
    rows, counts = torch.unique(labels.cpu(), dim=0, return_counts=True)
    return {"rows": rows.tolist(), "counts": counts.tolist()}


def batch_sampler(
    data: PortraitData,
    batch_size: int,
    resolution: int,
    cond_cols: torch.Tensor,
    generator: torch.Generator,
    channels_last: bool = False,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A callable drawing random training batches on the data's device, without host syncs.

    Returns (real (B, C, R, R) float in [-1, 1] on the network grid (C = 4 for model.alpha), labels (B, A') over
    the conditioning attributes `cond_cols`), real in channels-last memory if asked (the
    networks' layout with train.channels_last). The images are cut to the network grid
    once, here, so a batch gathers and converts only the pixels the networks see.
    """
    grid = PortraitData(to_native(data.images, resolution).contiguous(), data.labels, data.vocab, data.meta, data.files)
    layout = memory_layout(channels_last)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(grid), (batch_size,), generator=generator, device=grid.images.device)
        real, labels = grid.batch(idx)  # (B, 3, R, R), (B, A)
        return real.contiguous(memory_format=layout), labels[:, cond_cols]

    return next_batch


def compile_enabled(mode: str, device: torch.device) -> bool:
    """train.compile: "on" everywhere, "cuda" only on a GPU (CPU compiles for ~30 s and gains nothing)."""
    return mode == "on" or (mode == "cuda" and device.type == "cuda")


@dataclass
class TrainingSetup:
    """Everything one training process needs, built from a config and a dataset split."""

    trainer: Trainer | FlowTrainer  # the family's networks (DDP-wrapped when distributed), EMA, optimisers, state
    next_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]  # this rank's batches, on the device
    gen: torch.Generator  # this rank's stream: batches, noise, attribute dropout, augmentation
    vocab: Vocabulary  # the dataset's attributes (checkpoints store it)
    cvocab: Vocabulary  # the attributes the networks condition on (palette dropped when OFF)
    cond_cols: torch.Tensor  # (A',) columns of the dataset's labels that make up cvocab
    out_res: int  # the dataset's image size (64)
    net_res: int  # the networks' grid: out_res, or the native grid out_res / native_scale
    native_scale: int  # the dataset's native pixel size at out_res
    pixel: int  # native pixel size on the grid D sees (translation moves whole ones)
    label_mix: dict  # joint label rows/counts of the whole split: what sampling draws from
    shard: PortraitData  # this rank's rows of the split (all of them in one process), on the device
    info: DistInfo  # rank and world size (world size 1 outside torchrun)
    device: torch.device
    palette: list | None = None  # the dataset palette G draws from, [[r, g, b], ...] (palette_source=dataset)
    colours: dict | None = None  # how the data uses colour (data/colour_stats.py): what draw.adapt_colours reads
    palette_rules: dict | None = None  # how its palette labels were made (palette_labels.rules_reading): the check
    dataset_fingerprint: str | None = None  # of the dataset's files (data.dataset.dataset_fingerprint): train() sets it


def setup_training(
    cfg: Config, data: PortraitData, device: torch.device, info: DistInfo | None = None
) -> TrainingSetup:
    """Build a run's pieces from the data's own metadata: conditioning vocabulary, network and
    native resolution, models on `device`, Trainer, random stream and batch sampler.

    `info` (from distributed.process_group) makes this one rank of a multi-process run: the rows
    are sharded, G and D wrapped in DDP, the batch split (train.batch_size is global) and
    the random stream seeded per rank. Without it, a single-process run.
    """
    info = info or DistInfo()
    tc, mc = cfg.train, cfg.model
    data = limit_images(data, tc.max_images)  # train.max_images: a fixed stratified subset (data-size studies)
    vocab = data.vocab
    cvocab = conditioning_vocab(mc, vocab)
    rules = rules_reading(data.meta)  # refused here, before any network is built, not when the run first draws
    name = str(data.meta.get("name", "the dataset"))
    refusal = palette_check_refusal(cfg.draw.palette_check, name, rules, "palette" in cvocab.names)
    if refusal:
        raise ConfigError(refusal)
    cond_cols = torch.tensor(vocab.columns(cvocab.names), device=device, dtype=torch.long)
    out_res = data.resolution
    net_res = network_resolution(mc, out_res, data.native_scale)
    pixel = max(1, data.native_scale * net_res // out_res)  # native pixel size on the grid D sees

    drawn = data.with_alpha_channel() if mc.alpha else data  # model.alpha: the images D sees are RGBA
    shard = _shard(drawn, info, tc.seed).to(device)  # this rank's rows (all rows in a single process)
    palette = training_palette(cfg, data)  # the dataset palette G draws from (palette_source=dataset only)
    shard = quantise_reals(shard, palette)  # and the reals held to it
    G, D = _networks(cfg, vocab, net_res, device, info, palette)
    gen = torch.Generator(device=device).manual_seed(distributed.rank_seed(tc.seed, info))
    if D is None:  # the flow family
        trainer = FlowTrainer(G, cfg, cvocab, gen, dist_info=info)
    else:
        trainer = Trainer(G, D, cfg, cvocab, gen, pixel=pixel, dist_info=info)
    colours = data.colours()
    # the grids written while training show the run's colours (fitted to the data's with draw.adapt_colours)
    draw_in_colours(trainer.G_ema, cfg.draw.fitted(colours, palette_model=mc.output == "palette"))
    batch = distributed.per_rank_batch(tc.batch_size, info)
    next_batch = batch_sampler(shard, batch, net_res, cond_cols, gen, channels_last=tc.channels_last)
    if tc.teacher:  # distillation: G starts as the teacher and learns from the pairs it draws (training/distil.py)
        teacher = load_teacher(cfg, vocab, net_res, device, palette)
        start_from_teacher(trainer, teacher)
        seed = distributed.rank_seed(tc.seed, info)
        pool = shard.labels[:, cond_cols]
        pairs = draw_pairs(teacher, pool, tc.teacher_pairs, seed, tc.attr_dropout, cvocab.sizes, show=info.is_main)
        next_batch = pair_sampler(pairs, batch, gen, channels_last=tc.channels_last)
    return TrainingSetup(
        trainer,
        next_batch,
        gen,
        vocab,
        cvocab,
        cond_cols,
        out_res,
        net_res,
        data.native_scale,
        pixel,
        label_mix(data.labels),
        shard,
        info,
        device,
        None if palette is None else palette.tolist(),
        colours,
        rules,
    )


def _shard(data: PortraitData, info: DistInfo, seed: int) -> PortraitData:
    """This rank's rows of the split: a seeded disjoint shard under torchrun, else all of them."""
    if not info.enabled:
        return data
    idx = distributed.shard_indices(len(data), info, seed=seed)
    files = [data.files[i] for i in idx.tolist()] if data.files else []
    images, labels = data.images[idx.to(data.images.device)], data.labels[idx.to(data.labels.device)]
    return PortraitData(images, labels, data.vocab, data.meta, files)


def _networks(cfg: Config, vocab: Vocabulary, net_res: int, device: torch.device, info: DistInfo, palette=None):
    """(G, D) on the device: same seed on every rank (DDP also broadcasts rank 0's), in
    channels-last memory, compiled and DDP-wrapped as the config and the launcher say. D is None for the flow
    family."""
    tc, mc = cfg.train, cfg.model
    torch.manual_seed(tc.seed)
    G, D = build_models(mc, vocab, net_res, palette)
    layout = memory_layout(tc.channels_last)  # NHWC conv weights: same values
    G = G.to(device, memory_format=layout)
    if compile_enabled(tc.compile, device):  # inside DDP: distributed.unwrap finds the plain module
        G = torch.compile(G)
    if D is None:
        return distributed.wrap(G, info, device), None
    D = D.to(device, memory_format=layout)
    if compile_enabled(tc.compile, device) and not mc.d_spectral_norm:  # compiled spectral norm saves its
        D = torch.compile(D)  # power-iteration buffers for backward, and D's second forward overwrites them
    return distributed.wrap(G, info, device), distributed.wrap(D, info, device)


def checkpoint_state(
    s: TrainingSetup, cfg: Config, dataset: str, best: dict | None = None, rng_states: list | None = None
) -> dict:
    """The checkpoint dict: state_dicts, step, config, vocabulary, label mix, RNG of every rank, best eval.

    `rng_states`: every rank's batch/noise stream (distributed.all_gather of s.gen.get_state());
    default this process's. The one place that says what a checkpoint holds: train() saves it,
    evaluation while training and the benchmark sample from it.
    """
    t = s.trainer
    rng_states = rng_states or [s.gen.get_state()]
    state = {
        "step": t.iteration,
        "config": cfg.to_dict(),
        "vocab": s.vocab.to_json(),
        "dataset": {
            "name": str(dataset),
            "native_scale": s.native_scale,
            "resolution": s.out_res,
            "network_resolution": s.net_res,
            "label_mix": s.label_mix,
            "palette": s.palette,  # sampling and export rebuild G's palette output from it
            "colours": s.colours,  # the data's colour use: the drawing fits to it (draw.adapt_colours)
            "palette_rules": s.palette_rules,  # whether the rules made its palette labels (draw.palette_check)
            "fingerprint": s.dataset_fingerprint,  # a resumed run is refused on other data
        },
        **t.networks_state(),  # G, G_ema, opt_G (and D, opt_D for a GAN)
        "trainer": t.state_dict(),
        "rng": {"batches": rng_states[0], "torch": torch.get_rng_state()},
        "best": best,
    }
    if len(rng_states) > 1:
        state["rng"]["ranks"] = rng_states  # rank r's batch/noise stream, for exact multi-process resume
    return state


# What a resumed run may change: how long and how often it runs, where, and how fast (the
# checkpoint keeps plain state_dicts whatever compile / channels_last say), and how it draws (every draw.*
# field: training never reads them), not what it learns.
RESUME_FREE = {
    "preset",
    "train.steps",
    "train.max_minutes",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "train.eval_every",
    "train.eval_samples",
    "train.device",
    "train.compile",
    "train.channels_last",
}
# Optimiser settings a resumed run may change, with a notice: applied to the restored optimisers.
RESUME_OPTIMISER = {
    "train.g_lr": ("opt_G", "lr"),
    "train.d_lr": ("opt_D", "lr"),
    "train.g_betas": ("opt_G", "betas"),
    "train.d_betas": ("opt_D", "betas"),
}


def config_changes(saved: dict, now: dict) -> dict[str, tuple]:
    """{"section.field": (checkpoint value, value now)} for every field that differs. A field the
    checkpoint does not know (added by a later version) is not a change."""
    flat_saved, flat_now = _flatten(saved), _flatten(now)
    return {k: (flat_saved[k], v) for k, v in flat_now.items() if k in flat_saved and flat_saved[k] != v}


def _flatten(cfg: dict) -> dict:
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": list(v) if isinstance(v, tuple) else v for k, v in value.items()})
        else:
            out[key] = value
    return out


def check_resume(saved: dict, now: dict, path: Path) -> dict[str, tuple]:
    """Refuse to resume with changes to what the run learns (model, losses, regularisers, data,
    batch, seed), listing each; returns the allowed changes of learning rates and betas."""
    changes = config_changes(saved, now)
    free = RESUME_FREE | RESUME_OPTIMISER.keys()
    refused = {k: v for k, v in changes.items() if k not in free and not k.startswith("draw.")}
    if refused:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in refused.items())
        raise CheckpointError(
            f"cannot resume {path} with other settings ({listed}): they change what the run learns. "
            f"Resume with the checkpoint's settings, or start a new run with --run NEW_NAME or from scratch "
            f"with --no-resume"
        )
    return {k: v for k, v in changes.items() if k in RESUME_OPTIMISER}


def restore(s: TrainingSetup, state: dict, cfg: Config, path: Path, dataset: str) -> dict | None:
    """Load a checkpoint into a fresh setup (networks, optimisers, ADA p / LeCam anchors, this
    rank's random stream, step); returns its best train-time evaluation ({"fd", "step"} or None).

    Settings that only say how long / how often may differ from the checkpoint's; changed
    learning rates and betas are applied to the restored optimisers (with a notice); any
    other change is refused (check_resume), and so is other data (check_dataset)."""
    t, info = s.trainer, s.info
    optimiser_changes = check_resume(state["config"], cfg.to_dict(), path)
    check_vocabulary(state["vocab"], s.vocab.to_json(), path)
    check_dataset(state["dataset"], dataset, s.dataset_fingerprint, path)
    t.load_networks(state)
    for key, (old, new) in optimiser_changes.items():
        opt, name = RESUME_OPTIMISER[key]
        if opt not in t.optimisers:  # d_lr of a flow model: it has no D to apply it to
            continue
        for group in t.optimisers[opt].param_groups:
            group[name] = tuple(new) if isinstance(new, list) else new
        if info.is_main:
            print(f"resuming {path} with {key} {old} -> {new} (applied to the restored optimiser)", file=sys.stderr)
    t.load_state_dict(state.get("trainer", {"iteration": state["step"]}))
    rng, ranks = state["rng"], state["rng"].get("ranks")
    if ranks is not None and len(ranks) == info.world_size:
        s.gen.set_state(ranks[info.rank].cpu())
    elif info.rank == 0:
        s.gen.set_state(rng["batches"].cpu())
    else:  # resumed on another number of ranks: a fresh stream for this one
        s.gen.manual_seed(distributed.rank_seed(cfg.train.seed + t.iteration, info))
    torch.set_rng_state(rng["torch"].cpu())
    return state.get("best")


def check_dataset(saved: dict, dataset: str, fingerprint: str | None, path: Path) -> None:
    """Refuse to resume a run on other data than it trained on: another dataset, or the same one rebuilt with other
    images or labels (the fingerprint of images.npy and labels.csv; checkpoints from before it compare folders)."""
    same_folder = dataset_dir(saved["name"]).resolve() == dataset_dir(dataset).resolve()
    same = saved["fingerprint"] == fingerprint if saved.get("fingerprint") and fingerprint else same_folder
    if same:
        return
    if same_folder:
        raise CheckpointError(
            f"checkpoint {path} was trained on dataset {saved['name']!r} as it was then: it has been rebuilt since "
            f"with other images or labels, so resuming would train on other data. Start a new run with --run NEW_NAME"
        )
    raise CheckpointError(
        f"checkpoint {path} was trained on dataset {saved['name']!r}, not on {dataset!r}: resuming would train it "
        f"on other data. Resume with --dataset {saved['name']}, or start a new run with --run NEW_NAME"
    )


def resume_checkpoint(run_dir: Path, device: torch.device, info: DistInfo) -> tuple[Path, dict] | None:
    """The checkpoint a run resumes from, read on every rank: last.pt, or when it is missing or cannot be read (a
    save cut short, a full disk), the newest of previous.pt and best.pt that can, with a notice. None for a run
    with no checkpoint at all; a run whose checkpoints all fail is refused, never started again from step 0."""
    present = [p for p in (run_dir / n for n in RUN_CHECKPOINTS) if checkpoint_exists(p, info)]
    readable, problems = [], []
    for path in present:
        try:
            readable.append((path, load_checkpoint(path, map_location=device)))
        except CheckpointError as e:
            problems.append(str(e))
        if readable and path.name == "last.pt":
            return readable[0]
    if not present:
        return None
    if not readable:
        raise CheckpointError(
            f"run {run_dir} has checkpoints, but none can be read ({'; '.join(problems)}). Start it again from step "
            "0 with --no-resume (they are set aside in the run folder, not deleted), or pick another --run"
        )
    path, state = max(readable, key=lambda found: int(found[1]["step"]))
    if info.is_main:
        why = problems[0] if problems else f"{run_dir / 'last.pt'} is missing"
        print(f"{why}; resuming from {path} (step {state['step']})", file=sys.stderr)
    return path, state


def checkpoint_exists(path: Path, info: DistInfo) -> bool:
    """Whether `path` exists, the same answer on every rank (they all resume from it)."""
    seen = distributed.all_gather(path.exists(), info)
    if len(set(seen)) > 1:
        raise distributed.DistributedError(
            f"{path} exists on ranks {[r for r, e in enumerate(seen) if e]} but not on the others: "
            f"multi-node runs need artifacts_gan/ on a filesystem every node shares"
        )
    return seen[0]
