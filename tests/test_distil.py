"""Distilling a flow run (training/distil.py): the student draws in few steps what the teacher draws in many, and a
distillation run is a run like any other (the verb, exact resume, refusals in one line)."""

from __future__ import annotations

import copy
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from test_flow import VOCAB, trained_flow
from toys import FAMILIES

from heroportraits.cli import main as cli_main
from heroportraits.models.flow import flow_matching_loss
from heroportraits.sampling.sampler import Sampler
from heroportraits.training.checkpoint import load_checkpoint
from heroportraits.training.distil import draw_pairs, pair_sampler, start_from_teacher
from heroportraits.training.flow_trainer import FlowTrainer
from heroportraits.training.loop import train
from heroportraits.training.presets import resolve_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def drawn(G, z: torch.Tensor, labels: torch.Tensor, steps: int, solver: str, guidance: float = 1.0, until=1.0):
    G.eval()
    G.steps, G.solver, G.guidance, G.guidance_from, G.guidance_until = steps, solver, guidance, 0.0, until
    with torch.no_grad():
        return G(z, labels)


def test_the_student_draws_in_one_step_what_the_teacher_draws_in_many():
    teacher_trainer, _ = trained_flow(steps=150)
    teacher = teacher_trainer.G_ema
    teacher.steps, teacher.solver, teacher.guidance, teacher.guidance_until = 12, "heun", 2.0, 0.5
    pool = torch.arange(4)[:, None]  # the four classes
    pairs = draw_pairs(teacher, pool, 256, seed=3, attr_dropout=0.0, unspecified=VOCAB.sizes, show=False)
    noise, portraits, labels = pairs
    assert torch.allclose(drawn(teacher, noise[:8], labels[:8], 12, "heun", 2.0, 0.5), portraits[:8], atol=1e-4)

    settings = SimpleNamespace(train=replace(teacher_trainer.tc, g_lr=teacher_trainer.tc.g_lr / 4))  # as `distil`
    student = FlowTrainer(
        copy.deepcopy(teacher).requires_grad_(True), settings, VOCAB, torch.Generator().manual_seed(0)
    )
    start_from_teacher(student, teacher)
    next_batch = pair_sampler(pairs, 32, student.gen)
    losses = [float(student.step(next_batch)["loss"]) for _ in range(200)]
    assert sum(losses[-20:]) < 0.8 * sum(losses[:20]), (losses[:3], losses[-3:])  # measured: 0.067 -> 0.044

    z, y = (
        torch.randn(64, teacher.z_dim, generator=torch.Generator().manual_seed(9)),
        torch.arange(4).repeat(16)[:, None],
    )
    target = drawn(teacher, z, y, 12, "heun", 2.0, 0.5)  # new noises: the teacher's many-pass guided drawing
    teacher_1 = (drawn(teacher, z, y, 1, "euler") - target).abs().mean()
    student_1 = (drawn(student.G_ema, z, y, 1, "euler") - target).abs().mean()
    assert student_1 < 0.6 * teacher_1, f"one Euler step: student {student_1:.3f}, teacher {teacher_1:.3f} from target"


def _teacher_run(toy_dataset) -> str:
    """A 3-step flow run on the toy data: what the distillation tests distil."""
    train(resolve_config("smoke", {**FAMILIES["flow"], "train.steps": 3}), toy_dataset, "teacher", progress=False)
    return "artifacts_gan/checkpoints/teacher"


def _distil(teacher: str, run: str, steps: int, *extra: str) -> int:
    return cli_main(["distil", teacher, "--run", run, "--minutes", "0", "--steps", str(steps), "--pairs", "24", *extra])


def test_a_distillation_is_a_run_that_resumes_exactly_and_draws_in_its_steps(toy_dataset, project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    teacher = _teacher_run(toy_dataset)
    assert _distil(teacher, "straight", 4) == 0
    assert _distil(teacher, "resumed", 2) == 0
    assert _distil(teacher, "resumed", 4) == 0
    a = load_checkpoint(project_root / "artifacts_gan/checkpoints/straight")
    b = load_checkpoint(project_root / "artifacts_gan/checkpoints/resumed")
    assert a["step"] == b["step"] == 4
    for net in ("G", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    cfg = a["config"]
    assert cfg["train"]["teacher"].endswith("teacher/last.pt") and cfg["train"]["teacher_pairs"] == 24
    assert (cfg["draw"]["flow_steps"], cfg["draw"]["flow_solver"], cfg["draw"]["guidance"]) == (2, "euler", 1.0)
    taught = load_checkpoint(project_root / teacher)
    assert cfg["train"]["g_lr"] == taught["config"]["train"]["g_lr"] / 4
    assert cfg["model"] == taught["config"]["model"]

    sampler = Sampler.from_checkpoint(project_root / "artifacts_gan/checkpoints/straight")
    calls = []
    net = sampler.G.net
    net.register_forward_hook(lambda *_: calls.append(1))
    sampler.generate_from_noise(sampler.noise(3), torch.zeros(3, len(sampler.cvocab.names), dtype=torch.long))
    assert len(calls) == 2  # two Euler steps, unguided: one pass each


def test_the_student_draws_unguided_and_keeps_the_rest_of_its_teachers_drawing(toy_dataset, project_root, monkeypatch):
    """A teacher whose own drawing is guided on some attributes (as `flow_unet_lpc`'s): its student draws unguided,
    with no guidance left in its drawing, and keeps the rest (colours, the palette check where the data allows)."""
    monkeypatch.chdir(project_root)
    guided = {"draw.guidance": 2.0, "draw.guidance_until": 0.5, "draw.guidance_on": "palette", "draw.rgb_colours": 6}
    train(resolve_config("smoke", {**FAMILIES["flow"], "train.steps": 2, **guided}), toy_dataset, "guided", False)
    assert _distil("artifacts_gan/checkpoints/guided", "unguided", 1) == 0
    draw = load_checkpoint(project_root / "artifacts_gan/checkpoints/unguided")["config"]["draw"]
    assert (draw["guidance"], draw["guidance_from"], draw["guidance_until"], draw["guidance_on"]) == (1.0, 0.0, 1.0, "")
    assert (draw["flow_steps"], draw["rgb_colours"]) == (2, 6)  # --draw-steps (2 by default); the colours kept


def test_a_teacher_that_cannot_teach_is_refused_in_one_line(toy_dataset, project_root, monkeypatch, capsys):
    monkeypatch.chdir(project_root)
    train(resolve_config("smoke", {"train.steps": 2}), toy_dataset, "gan", progress=False)
    assert _distil("artifacts_gan/checkpoints/gan", "s", 2) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a GAN; a teacher is a flow run" in err[0], err

    teacher = _teacher_run(toy_dataset)
    assert _distil(teacher, "s", 2, "--set", "model.g_width=32") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has other model settings (model.g_width: " in err[0], err

    assert _distil(teacher, "s", 2, "--teacher-guidance-on", "size=2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.teacher_guidance_on='size=2' (--teacher-guidance-on): this model has no" in err[0]
    assert _distil(teacher, "s", 2, "--teacher-guidance", "1", "--teacher-guidance-on", "palette") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "it is off (train.teacher_guidance=1): add --teacher-guidance W" in err[0], err
    assert _distil(teacher, "s_scaled", 1, "--teacher-guidance-on", "hero_class=1.5,palette=2") == 0
    capsys.readouterr()  # its progress bars
    state = load_checkpoint(project_root / "artifacts_gan" / "checkpoints" / "s_scaled" / "last.pt")
    assert state["config"]["train"]["teacher_guidance_on"] == "hero_class=1.5,palette=2"

    assert cli_main(["distil", teacher, "--minutes", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would distil for ever: give --minutes M > 0 or --steps N" in err[0], err

    with pytest.raises(Exception, match="train.teacher=.* distils a flow model"):
        resolve_config("smoke", {"train.teacher": teacher})
    with pytest.raises(Exception, match="train.teacher_times=2 fits a distilled student .* has no train.teacher"):
        resolve_config("smoke", {**FAMILIES["flow"], "train.teacher_times": 2})


def test_a_student_can_fit_its_paths_only_at_the_times_its_drawing_evaluates():
    seen = []

    def velocity(x, labels, t):  # records the times the loss asks G about
        seen.append(t.clone())
        return torch.zeros_like(x)

    data, labels, gen = torch.zeros(512, 3, 4, 4), torch.zeros(512, 1, dtype=torch.long), torch.Generator()
    flow_matching_loss(velocity, data, labels, gen.manual_seed(0), noise=torch.randn(512, 48), times=2)
    assert sorted(set(seen[-1].tolist())) == [0.0, 0.5]  # the two times of a 2-step Euler drawing, both
    flow_matching_loss(velocity, data, labels, gen.manual_seed(0), noise=torch.randn(512, 48))
    assert len(set(seen[-1].tolist())) == 512  # by default every t in [0, 1)


def test_the_teacher_draws_its_pairs_in_the_runs_drawing_layout(toy_dataset, project_root, monkeypatch):
    """draw.channels_last (on in the flow presets): the teacher's network draws the pairs in channels-last memory,
    the same pairs up to float rounding as in the plain layout."""
    from heroportraits.data.attributes import Vocabulary
    from heroportraits.training.distil import load_teacher

    monkeypatch.chdir(project_root)
    train(resolve_config("smoke", {**FAMILIES["flow"], "train.steps": 2}), toy_dataset, "t", False)
    state = load_checkpoint(project_root / "artifacts_gan/checkpoints/t")
    vocab, res = Vocabulary.from_json(state["vocab"]), int(state["dataset"]["network_resolution"])
    labels = torch.zeros(4, len(vocab.names), dtype=torch.long)
    drawn_pairs = {}
    for layout in (False, True):
        cfg = resolve_config(
            "smoke", {**FAMILIES["flow"], "train.teacher": "artifacts_gan/checkpoints/t", "draw.channels_last": layout}
        )
        teacher = load_teacher(cfg, vocab, res, torch.device("cpu"))
        assert teacher.net.stem.weight.is_contiguous(memory_format=torch.channels_last) == layout
        drawn_pairs[layout] = draw_pairs(teacher, labels, 4, seed=0, attr_dropout=0.0, unspecified=vocab.sizes)[1]
    assert (drawn_pairs[True] - drawn_pairs[False]).abs().max() < 1e-4
