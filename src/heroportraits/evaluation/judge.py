"""The judge: a small CNN trained on a dataset's own TRAIN split, whose features every metric uses.

Inception weights cannot be downloaded here and fit 64x64 pixel art poorly, so the
feature space for FD / KID / precision-recall is learned from the data itself: one
classification head per attribute on a shared trunk, the penultimate layer (standardised
by a batch-norm without affine terms, before the heads' ReLU) being the feature vector.
Its held-out accuracy on the VAL split is
stored with it, because a metric in a feature space is only as meaningful as the
features: a judge that cannot tell mages from rogues cannot score conditioning.

Trained once per dataset and cached as `data/<name>/judge.pt` (a state_dict plus
plain data, loaded with weights_only=True) together with a fingerprint of the
dataset files, so a rebuilt dataset is detected and the judge retrained.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from heroportraits.data.attributes import Vocabulary
from heroportraits.data.dataset import DatasetError, PortraitData, dataset_fingerprint, load_dataset
from heroportraits.errors import HeroError
from heroportraits.paths import dataset_dir
from heroportraits.progress import progress_bar

JUDGE_FORMAT = 2  # 2: features standardised by a non-affine batch-norm
JUDGE_FILE = "judge.pt"


class JudgeError(HeroError):
    """A judge cache that cannot be used, or images the judge cannot read."""


@dataclass
class JudgeConfig:
    width: int = 16  # channels after the stem; x2 per stage up to 8x (16 -> 128)
    feature_dim: int = 128  # size of the penultimate layer = the metric feature space
    epochs: int = 8  # passes over TRAIN
    batch_size: int = 128
    lr: float = 3e-3  # AdamW peak learning rate (linear warm-up, cosine decay)
    weight_decay: float = 5e-4
    dropout: float = 0.2  # before the heads only; features are taken before it
    max_shift: int = 4  # random translation in pixels (augmentation), 0 disables
    flip: bool = True  # random horizontal flip (augmentation)
    seed: int = 0  # weights, batch order and augmentation


class JudgeNet(nn.Module):
    """Strided conv trunk -> `feature_dim` features -> one linear head per attribute.

    images (N, 3, 64, 64) in [-1, 1] -> features (N, D), [logits (N, n_values_a) per attribute]
    """

    def __init__(self, sizes: list[int], cfg: JudgeConfig, resolution: int = 64):
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        w = cfg.width
        layers = block(3, w, 1)  # 64x64
        chans = [w, 2 * w, 4 * w, 8 * w]
        for cin, cout in zip(chans[:-1], chans[1:]):  # 32x32, 16x16, 8x8
            layers += block(cin, cout, 2) + block(cout, cout, 1)
        layers += block(chans[-1], chans[-1], 2)  # 4x4
        self.trunk = nn.Sequential(*layers)
        side = resolution // 16
        self.fc = nn.Linear(chans[-1] * side * side, cfg.feature_dim)
        # Standardise the features (zero mean, unit variance per unit on TRAIN, running
        # statistics at eval): the KID kernel (x.y/D + 1)^3 assumes O(1) features, and
        # FD / k-NN radii then do not depend on the scale the trunk happened to learn.
        self.norm = nn.BatchNorm1d(cfg.feature_dim, affine=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.heads = nn.ModuleList(nn.Linear(cfg.feature_dim, n) for n in sizes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = self.norm(self.fc(self.trunk(x).flatten(1)))  # (N, D), standardised, pre-activation
        h = self.drop(F.relu(feats))
        return feats, [head(h) for head in self.heads]


def _as_nchw_uint8(images) -> torch.Tensor:
    """Accept numpy (N, H, W, 3) or torch (N, 3, H, W) uint8; return torch (N, 3, H, W) uint8."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise JudgeError(f"expected images shaped (N, H, W, 3), got {images.shape}")
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).permute(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] != 3:
        raise JudgeError(f"expected a tensor shaped (N, 3, H, W), got {tuple(images.shape)}")
    return images.to(torch.uint8).cpu()


def _to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    return x_uint8.float().div_(127.5).sub_(1.0)


@dataclass
class Judge:
    """A trained judge with its vocabulary and VAL accuracies; embeds uint8 images."""

    net: JudgeNet
    vocab: Vocabulary
    config: JudgeConfig
    accuracy: dict[str, float]  # per attribute, on VAL
    joint_accuracy: float  # all attributes right, on VAL
    fingerprint: str  # of the dataset files it was trained on
    resolution: int = 64
    train_seconds: float = 0.0
    meta: dict = field(default_factory=dict)  # n_train, n_val, dataset folder

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @torch.inference_mode()
    def embed(self, images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Images -> (features (N, D) float64, predicted value indices (N, A) int64)."""
        x = _as_nchw_uint8(images)
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise JudgeError(
                f"the judge reads {self.resolution}x{self.resolution} images, got "
                f"{x.shape[-2]}x{x.shape[-1]}; resize with images.to_resolution first"
            )
        self.net.eval()
        feats, preds = [], []
        for i in range(0, len(x), batch_size):
            xb = _to_float(x[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
            f, logits = self.net(xb)
            feats.append(f.double().numpy())
            preds.append(torch.stack([lg.argmax(1) for lg in logits], 1).numpy())
        if not feats:
            return np.zeros((0, self.feature_dim)), np.zeros((0, len(self.vocab.names)), np.int64)
        return np.concatenate(feats), np.concatenate(preds).astype(np.int64)

    def features(self, images) -> np.ndarray:
        return self.embed(images)[0]

    def predict(self, images) -> np.ndarray:
        return self.embed(images)[1]


# ---------------------------------------------------------------- training
def _augment(x: torch.Tensor, cfg: JudgeConfig, gen: torch.Generator) -> torch.Tensor:
    """Random flip and translation (edge-replicated) of a float batch (N, 3, H, W)."""
    n, _, h, w = x.shape
    if cfg.flip:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    s = cfg.max_shift
    if s > 0:
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        dy, dx = torch.randint(0, 2 * s + 1, (2, n), generator=gen).tolist()
        x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    return x


def _accuracy(preds: np.ndarray, labels: np.ndarray, names: list[str]) -> tuple[dict[str, float], float]:
    right = preds == labels  # (N, A) bool
    return {n: float(right[:, i].mean()) for i, n in enumerate(names)}, float(right.all(1).mean())


def train_judge(name_or_path: str | Path, cfg: JudgeConfig | None = None, progress: bool = True) -> Judge:
    """Train a judge on TRAIN, measure it on VAL. Deterministic for `cfg.seed` on a given machine."""
    cfg = cfg or JudgeConfig()
    train = load_dataset(name_or_path, "train")
    try:
        val = load_dataset(name_or_path, "val")
    except DatasetError as e:
        raise JudgeError(f"the judge needs a VAL split to measure itself: {e}. Rebuild with a val fraction > 0") from e
    return train_judge_on(train, val, cfg, name_or_path, progress)


def train_judge_on(
    train: PortraitData, val: PortraitData, cfg: JudgeConfig, name_or_path: str | Path, progress: bool = True
) -> Judge:
    """A judge of `train`'s labels (any vocabulary: headgear.py trains one of head items), measured on `val`."""
    vocab = train.vocab
    t0 = time.time()

    # Seeded init, batch order and augmentation; deterministic CPU kernels while training.
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        # channels_last: ~30% faster convolutions on CPU, same numbers.
        net = JudgeNet(vocab.sizes, cfg, train.resolution).to(memory_format=torch.channels_last)
        _fit(net, train, cfg, gen, desc=f"judge ({Path(str(name_or_path)).name})", progress=progress)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    net.eval()

    judge = Judge(
        net,
        vocab,
        cfg,
        {},
        0.0,
        dataset_fingerprint(name_or_path),
        train.resolution,
        meta={"n_train": len(train), "n_val": len(val), "dataset": str(dataset_dir(name_or_path))},
    )
    judge.accuracy, judge.joint_accuracy = _accuracy(judge.predict(val.images), val.labels.numpy(), vocab.names)
    judge.train_seconds = time.time() - t0
    return judge


def _fit(net: JudgeNet, train, cfg: JudgeConfig, gen: torch.Generator, desc: str, progress: bool) -> None:
    """cfg.epochs of AdamW on the TRAIN split: linear warm-up, then cosine decay; augmented batches."""
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(train)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch (BN)
    total = cfg.epochs * steps_per_epoch
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda t: (t + 1) / warmup if t < warmup else 0.5 * (1 + np.cos(np.pi * (t - warmup) / max(1, total - warmup))),
    )
    net.train()
    bar = progress_bar(total=total, desc=desc, disable=not progress, leave=False)
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            if len(idx) < 2:
                continue
            x = _augment(_to_float(train.images[idx]), cfg, gen)  # (B, 3, H, W)
            x = x.contiguous(memory_format=torch.channels_last)
            y = train.labels[idx]  # (B, A)
            _, logits = net(x)
            loss = sum(F.cross_entropy(lg, y[:, a]) for a, lg in enumerate(logits))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()


# ---------------------------------------------------------------- cache
def judge_path(name_or_path: str | Path) -> Path:
    return dataset_dir(name_or_path) / JUDGE_FILE


def save_judge(judge: Judge, path: str | Path) -> Path:
    path = Path(path)
    state = {
        "format": JUDGE_FORMAT,
        "state_dict": judge.net.state_dict(),
        "config": asdict(judge.config),
        "vocab": judge.vocab.to_json(),
        "accuracy": judge.accuracy,
        "joint_accuracy": judge.joint_accuracy,
        "fingerprint": judge.fingerprint,
        "resolution": judge.resolution,
        "train_seconds": judge.train_seconds,
        "meta": judge.meta,
    }
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(state, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_judge(path: str | Path) -> Judge:
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign file: the caller retrains
        raise JudgeError(f"cannot read judge cache {path}: {e}; delete it to retrain") from e
    if state.get("format") != JUDGE_FORMAT:
        raise JudgeError(f"{path}: judge format {state.get('format')} != {JUDGE_FORMAT}; delete it to retrain")
    cfg = JudgeConfig(**state["config"])
    vocab = Vocabulary.from_json(state["vocab"])
    net = JudgeNet(vocab.sizes, cfg, state["resolution"])
    net.load_state_dict(state["state_dict"])
    net.eval()
    return Judge(
        net,
        vocab,
        cfg,
        dict(state["accuracy"]),
        float(state["joint_accuracy"]),
        state["fingerprint"],
        int(state["resolution"]),
        float(state["train_seconds"]),
        dict(state["meta"]),
    )


_MEMORY: dict[tuple, Judge] = {}


def load_or_train_judge(
    name_or_path: str | Path, cfg: JudgeConfig | None = None, retrain: bool = False, progress: bool = True
) -> Judge:
    """The dataset's judge: from memory, else from `data/<name>/judge.pt`, else trained and cached.

    The cache is retrained when the dataset files changed (fingerprint) or when `cfg` is
    given and differs from the cached judge's config. `cfg=None` accepts any cached judge.
    """
    folder = dataset_dir(name_or_path)
    fingerprint = dataset_fingerprint(folder)
    key = (str(folder.resolve()), fingerprint)
    judge = None if retrain else _MEMORY.get(key)
    if judge is None and not retrain and judge_path(folder).exists():
        try:
            judge = load_judge(judge_path(folder))
        except JudgeError:
            judge = None
    if judge is not None and (judge.fingerprint != fingerprint or (cfg is not None and judge.config != cfg)):
        judge = None  # stale: the dataset was rebuilt or another judge was asked for
    if judge is None:
        judge = train_judge(folder, cfg, progress=progress)
        cache_judge(judge, judge_path(folder))
    _MEMORY[key] = judge
    return judge


def cache_judge(judge: Judge, path: Path) -> None:
    """Keep a judge just trained for the next evaluation; a dataset folder that cannot be written (read-only, a
    full disk) is said in one line, and this process scores with the judge in memory."""
    try:
        save_judge(judge, path)
    except (OSError, RuntimeError) as e:  # torch reports a write cut short as RuntimeError
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:120]
        print(
            f"warning: could not cache the judge in {path} ({why}); it is used from memory and trained again next time"
        )


def describe_accuracy(accuracy: dict[str, float], joint_accuracy: float) -> str:
    """'gender 0.97, hero_class 0.91, palette 0.88; joint 0.80' for printing beside scores."""
    parts = ", ".join(f"{n} {a:.3f}" for n, a in accuracy.items())
    return f"{parts}; joint {joint_accuracy:.3f}"
