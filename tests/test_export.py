"""Export: the ONNX and TorchScript files give PyTorch's portraits, at any batch size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from heroportraits.cli import main as cli_main
from heroportraits.sampling.export import example_inputs, export_generator, read_metadata, run_exported
from heroportraits.sampling.sampler import Sampler

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread

# The plain smoke model, and one with conditional batch-norm, spectral norm and residual blocks
# (the parametrisations must fold into plain weights).
MODELS = {
    "dcgan": {},
    "resnet_cbn_sn": {"model.arch": "resnet", "model.g_cond": "concat+cbn", "model.g_spectral_norm": True},
    # eval-mode argmax colours and skip-layer excitation inside the traced graph
    "palette_sle": {"model.output": "palette", "model.palette_k": 6, "model.g_sle": True},
    # and the merge of near-identical palette colours (a loop over the slots, traced)
    "palette_merge": {"model.output": "palette", "model.palette_k": 6, "draw.palette_merge": 40.0},
    # an RGB model's samples quantised per portrait (k-means: fixed loops, traced) and merged
    "rgb_colours": {"draw.rgb_colours": 6, "draw.palette_merge": 3.0},
    # StyleGAN2's generator: mapping, modulated convs, its fixed noise maps, skip outputs, quantised
    "style": {"model.arch": "style", "draw.rgb_colours": 6},
    # the flow family: the solver loop (2 Heun steps, guided on the first pass only: t < 0.5, each attribute at
    # its own scale) and the quantisation inside the graph
    "flow": {
        "model.arch": "unet",
        "train.attr_dropout": 0.2,
        "draw.flow_steps": 2,
        "draw.guidance": 1.5,
        "draw.guidance_until": 0.5,
        "draw.guidance_on": "gender=1.5,hero_class=2",
        "draw.rgb_colours": 6,
    },
}


def torch_portraits(sampler: Sampler, noise: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """What the package draws in Python for these inputs (labels in conditioning-vocab order)."""
    return sampler.render(noise, labels)


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
@pytest.mark.parametrize("model", list(MODELS))
def test_exported_generator_matches_pytorch_at_batch_1_and_5(smoke_checkpoint, tmp_path, model, fmt, suffix):
    ckpt = smoke_checkpoint(**MODELS[model])
    out = export_generator(ckpt, tmp_path / f"g{suffix}", fmt)
    sampler = Sampler.from_checkpoint(ckpt)
    for n in (1, 5):
        noise, labels = example_inputs(sampler, n, seed=n)
        got = run_exported(out, noise.numpy(), labels.numpy())
        assert got.dtype == np.uint8 and got.shape == (n, 64, 64, 3)
        want = torch_portraits(sampler, noise, labels)
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() <= 1, f"{fmt} {model} n={n}: max difference {diff.max()}"
        assert (diff == 0).mean() > 0.99
        # native grid 32x32 upscaled x2 inside the graph: every 2x2 block is one colour
        assert (got[:, ::2, ::2] == got[:, 1::2, 1::2]).all()


def test_metadata_describes_the_inputs(smoke_checkpoint, tmp_path):
    out = export_generator(smoke_checkpoint(), tmp_path / "g.onnx", "onnx")
    meta = read_metadata(out)
    assert meta["z_dim"] == 16 and meta["resolution"] == 64
    assert meta["attributes"]["palette"] == ["warm", "cool", "dark", "neutral", "muted"]
    assert list(meta["attributes"]) == ["gender", "hero_class", "palette"]
    assert meta["inputs"]["labels"] == ["N", 3, "int64"]


def test_export_cli_writes_file_and_rejects_unknown_format(smoke_checkpoint, tmp_path, capsys):
    out = tmp_path / "hero.pt"
    assert cli_main(["export", str(smoke_checkpoint()), "--format", "torchscript", "--out", str(out)]) == 0
    assert out.exists() and "z_dim 16" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["export", str(smoke_checkpoint()), "--format", "tflite", "--out", str(out)])
    assert cli_main(["export", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def docs_example() -> str:
    """The python block after the `<!-- export-example -->` marker in docs/export.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    after = text.split("<!-- export-example -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_docs_example_runs_with_onnxruntime_and_numpy_alone(smoke_checkpoint, tmp_path):
    export_generator(smoke_checkpoint(), tmp_path / "hero.onnx", "onnx")
    (tmp_path / "example.py").write_text(docs_example())
    # `import torch` fails in this interpreter (a None entry in sys.modules), as on a machine without it
    runner = "import runpy, sys; sys.modules['torch'] = None; runpy.run_path('example.py')"
    done = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(4, 64, 64, 3) uint8" in done.stdout
    ppm = (tmp_path / "mage.ppm").read_bytes()
    header = b"P6 64 64 255\n"
    assert ppm.startswith(header) and len(ppm) == len(header) + 64 * 64 * 3
    pixels = np.frombuffer(ppm[len(header) :], np.uint8).reshape(64, 64, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1


def test_export_refuses_a_checkpoint_with_non_finite_weights(smoke_checkpoint, tmp_path, capsys):
    state = torch.load(smoke_checkpoint(), weights_only=True)
    name = next(k for k, v in state["G_ema"].items() if v.is_floating_point())
    state["G_ema"][name] = torch.full_like(state["G_ema"][name], float("nan"))
    torch.save(state, tmp_path / "diverged.pt")  # torch.save: the package's own save refuses NaNs
    assert cli_main(["export", str(tmp_path / "diverged.pt"), "--out", str(tmp_path / "g.onnx")]) == 2
    assert "non-finite" in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()


def test_export_carries_the_palette_merge_and_can_override_it(smoke_checkpoint, tmp_path):
    """The merge is in the graph: a file exported with --palette-merge 0 draws more colours than the
    checkpoint's own (40 dE here), and the metadata says which."""
    ckpt = smoke_checkpoint(**MODELS["palette_merge"])
    merged = export_generator(ckpt, tmp_path / "merged.onnx", "onnx")
    assert cli_main(["export", str(ckpt), "--out", str(tmp_path / "plain.onnx"), "--palette-merge", "0"]) == 0
    plain = tmp_path / "plain.onnx"
    assert read_metadata(merged)["palette_merge"] == 40.0 and read_metadata(plain)["palette_merge"] == 0.0
    noise, labels = example_inputs(Sampler.from_checkpoint(ckpt), 6, seed=1)
    count = lambda path: sum(  # noqa: E731
        len(np.unique(img.reshape(-1, 3), axis=0)) for img in run_exported(path, noise.numpy(), labels.numpy())
    )
    assert count(merged) < count(plain)


def test_a_flow_model_drawn_in_bf16_exports_its_float32_drawing(smoke_checkpoint, tmp_path):
    """draw.bf16 speeds PyTorch's drawing; an exported file runs on any machine, so it computes in float32 (not one
    cast to bf16 in its graph; 19 in this one's with the velocity passes under autocast) and draws what `sample
    --no-bf16` draws (unquantised here: per-portrait k-means turns a last-bit difference into another colour)."""
    import onnx

    ckpt = smoke_checkpoint(**{**MODELS["flow"], "draw.rgb_colours": 0, "draw.bf16": True})
    assert Sampler.from_checkpoint(ckpt).drawing.bf16
    out = export_generator(ckpt, tmp_path / "g.onnx", "onnx")
    casts = [a.i for node in onnx.load(str(out)).graph.node for a in node.attribute if a.name == "to"]
    assert onnx.TensorProto.BFLOAT16 not in casts
    float32 = Sampler.from_checkpoint(ckpt, draw={"bf16": False})
    noise, labels = example_inputs(float32, 3, seed=3)
    diff = np.abs(
        run_exported(out, noise.numpy(), labels.numpy()).astype(int) - torch_portraits(float32, noise, labels)
    )
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
