"""D's head classifier: one attribute named from the top rows of the portrait alone.

D's auxiliary classifier (layers.ClassifierHead) reads the whole portrait, and on the varied LPC
art a generator satisfies it with colours, collars and shoulders while the head stays as the
noise drew it: with the same noise, the class changed everything but the headgear (issue 11;
`python -m heroportraits headgear` measures it). This classifier sees only the top
`model.head_rows` share of the rows, where hair is shared by every class and head items are not,
so G can make it name the class only by what it draws on the head. Trained like the auxiliary
classifier: on reals in D's update, G pays its cross-entropy on fakes (weight model.d_head_classify).

With `model.head_fake` it also names fakes as one more value, "fake" (the semi-supervised GAN's C+1
classes, Salimans 2016 / Odena 2016): a classifier trained on reals alone is satisfied by top-half cues
that are no head item (it named the asked class of every fake while a judge read two heads in three
as bare, docs/log/2026-12-04-head-classifier-weight.md); one that also learns what fakes look like there is not. The
fake term joins the real one in D's loss, so the `d_head` column of metrics.csv then logs their sum.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from heroportraits.data.attributes import LabelError, Vocabulary


class HeadClassifier(nn.Module):
    """Three strided convs on the top rows -> pooled to 2x4 -> logits of one attribute.

    x: (N, 3, R, R) in [-1, 1], labels: (N, A) -> mean cross-entropy (unspecified labels left out).
    With `fake_class`, one more logit (index n_values) names fakes (`fake_loss`)."""

    def __init__(self, vocab: Vocabulary, attribute: str, rows: float, width: int, fake_class: bool = False):
        super().__init__()
        self.column = vocab.names.index(attribute)
        self.n_values = vocab.sizes[self.column]
        self.fake_class = fake_class
        self.rows = rows
        chans = [3, width, 2 * width, 4 * width]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(chans[:-1], chans[1:]))
        self.head = nn.Linear(4 * width * 8, self.n_values + int(fake_class))

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        # the colours only (an RGBA model's mask is not the head); 8 rows at least: three halvings leave one
        return x[:, :3, : max(8, round(self.rows * x.shape[-2]))]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.crop(x)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return self.head(F.adaptive_avg_pool2d(h, (2, 4)).flatten(1)).float()

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ce, keep = self._cross_entropy(x, labels)
        return (ce * keep).sum() / keep.sum().clamp(min=1)

    def fake_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of naming every portrait of `x` (fakes, in D's update) as the "fake" value."""
        logits = self.logits(x)
        return F.cross_entropy(logits, torch.full_like(logits[:, 0], self.n_values, dtype=torch.long))

    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) the log-probability of each portrait's asked value (0 where it is unspecified): refinement
        climbs it with draw.refine_head (sampling/selection.py)."""
        ce, keep = self._cross_entropy(x, labels)
        return -ce * keep

    def _cross_entropy(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = labels[:, self.column]
        keep = target < self.n_values
        return F.cross_entropy(self.logits(x), target.clamp(max=self.n_values - 1), reduction="none"), keep


def maybe_head_classifier(cfg, vocab: Vocabulary) -> HeadClassifier | None:
    """The head classifier when `model.d_head_classify` > 0; none (no parameters) when off."""
    if cfg.d_head_classify <= 0:
        return None
    if cfg.head_attribute not in vocab.names:
        raise LabelError(
            f"model.head_attribute={cfg.head_attribute!r}: the model is conditioned on {vocab.names}; name one of "
            "those (or set model.d_head_classify=0)"
        )
    return HeadClassifier(vocab, cfg.head_attribute, cfg.head_rows, cfg.d_width, fake_class=cfg.head_fake)
