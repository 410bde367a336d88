"""Export the EMA generator for game engines and other runtimes: ONNX or TorchScript.

    python -m heroportraits export artifacts_gan/checkpoints/demo --format onnx --out hero.onnx

The exported graph (docs/export.md) is the whole way from noise to pixels:
    noise  (N, z_dim) float32  standard normal
    labels (N, A)     int64    one value index per attribute, attributes in the metadata's order
    -> image (N, 64, 64, 3) uint8 RGB (RGBA, 4 channels, for a model that draws alpha: model.alpha)
N is dynamic. The nearest upscale from the native grid and the [-1, 1] -> uint8 conversion are
inside the graph (models.to_pixels, as `sample` does them), and so is whatever the generator's
eval forward does in the run's colours: a palette model's hard argmax colours, an RGB model's
per-portrait quantisation and merge (draw.rgb_colours, draw.palette_merge). D's guidance (best of R,
refinement) is not, nor the palette check (its rounds and rules are in the metadata, for the caller to
redo): the file holds G alone, so it draws each noise as G draws it, in float32 (draw.bf16 is PyTorch's
drawing; a file runs on any machine). The attributes, their values and z_dim travel inside the file
(ONNX metadata / a TorchScript extra file), so a caller needs
nothing else to build valid inputs.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from heroportraits.errors import HeroError
from heroportraits.models import to_pixels
from heroportraits.models.config import is_flow
from heroportraits.models.palette_output import colour_record
from heroportraits.paths import output_file, writing
from heroportraits.sampling.sampler import Drawing, Sampler

FORMATS = ("onnx", "torchscript")
METADATA_KEY = "heroportraits"  # ONNX metadata_props key / TorchScript extra file "heroportraits.json"
EXPORT_FORMAT = 1  # version of the signature below; bump when inputs or outputs change
ONNX_OPSET = 18


class ExportError(HeroError):
    """An export that cannot be made: unknown format, missing exporter package."""


class PortraitGraph(nn.Module):
    """G plus the post-processing `Sampler` does in Python, as one traceable module.

    noise (N, z_dim) float32, labels (N, A) int64 -> (N, R, R, 3) uint8, R = output resolution.
    """

    def __init__(self, G: nn.Module, output_resolution: int):
        super().__init__()
        self.G, self.output_resolution = G, output_resolution

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return to_pixels(self.G(noise, labels), self.output_resolution)


def frozen_generator(G: nn.Module) -> nn.Module:
    """An eval-mode copy of G with spectral norm folded into plain weights (W / sigma at its
    stored estimate), so the exported graph holds constants, not a power-iteration subgraph."""
    G = copy.deepcopy(G).eval()
    for module in G.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return G


def export_metadata(sampler: Sampler) -> dict:
    """What a caller needs to build inputs and read outputs, stored inside the exported file."""
    return {
        "export_format": EXPORT_FORMAT,
        "inputs": {
            "noise": ["N", sampler.z_dim, "float32"],
            "labels": ["N", len(sampler.cvocab.names), "int64"],
        },
        "output": {"image": ["N", sampler.resolution, sampler.resolution, 4 if sampler.draws_alpha else 3, "uint8"]},
        "z_dim": sampler.z_dim,
        "resolution": sampler.resolution,
        # label index of a value = its position in the list; index len(values) = unspecified
        "attributes": sampler.cvocab.to_json(),
        "unspecified_allowed": sampler.attr_dropout > 0,
        "dataset": sampler.dataset_name,
        "step": sampler.step,
        "preset": sampler.config.preset,
        **colour_record(sampler.config.model, sampler.drawing),
        **flow_record(sampler),
    }


def flow_record(sampler: Sampler) -> dict:
    """A flow model's sampler as the file runs it (fixed in the graph); nothing for a GAN."""
    if not is_flow(sampler.config.model):
        return {}
    d = sampler.drawing
    return {
        "flow": {
            "steps": d.flow_steps,
            "solver": d.flow_solver,
            "guidance": d.guidance,
            "guidance_interval": [d.guidance_from, d.guidance_until],
            "guidance_on": d.guidance_on or "all",
        }
    }


def example_inputs(sampler: Sampler, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n standard-normal noises and n label rows of the conditioning vocabulary (values at random)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, sampler.z_dim, generator=g)
    columns = [torch.randint(0, s, (n,), generator=g) for s in sampler.cvocab.sizes]
    return noise, torch.stack(columns, 1) if columns else torch.zeros(n, 0, dtype=torch.long)


def _export_onnx(graph: PortraitGraph, inputs, meta: dict) -> bytes:
    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ExportError(f"ONNX export needs onnx and onnxscript ({e}); pip install 'heroportraits[export]'") from e
    batch = torch.export.Dim("batch")
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    with warnings.catch_warnings():
        # Upstream noise that says nothing about this graph: torchvision ops it skips, a deprecation
        # inside torch.export, and a note that both inputs share the one batch axis (they do, by design).
        registry_log.setLevel(logging.ERROR)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*axis name", category=UserWarning)
        try:
            program = torch.onnx.export(
                graph,
                inputs,
                input_names=["noise", "labels"],
                output_names=["image"],
                dynamic_shapes={"noise": {0: batch}, "labels": {0: batch}},
                opset_version=ONNX_OPSET,
                dynamo=True,
                verbose=False,
            )
        finally:
            registry_log.setLevel(level)
    model = program.model_proto
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return model.SerializeToString()  # one self-contained file (weights inline, a few MB)


def _export_torchscript(graph: PortraitGraph, inputs, meta: dict) -> bytes:
    with warnings.catch_warnings():
        # torch.jit is deprecated upstream (ONNX is the format to prefer), and the tracer warns about
        # shape checks on the attribute count, which the export fixes anyway; the batch stays dynamic
        # (tests run batch sizes other than the traced one).
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(graph, inputs, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={f"{METADATA_KEY}.json": json.dumps(meta)})
    return buffer.getvalue()


def export_generator(checkpoint: str | Path, out: str | Path, fmt: str = "onnx", draw: Drawing = None) -> Path:
    """Write the checkpoint's EMA generator as `fmt` to `out`, with its metadata inside. It draws in the colours
    of `draw` (None = the run's default drawing; a DrawOptions or a mapping of fields to change) without D's
    guidance: the file holds G alone (no D to guide it), so it draws each noise as G draws it.

    The file is made in memory and written in one go through a temporary file: a path that cannot be written (a
    folder, a full disk) is one line, and never leaves a partial file."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    out = output_file(out, "export file")
    data = exported_bytes(Sampler.from_checkpoint(checkpoint, draw=draw), fmt)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with writing(out, "export file", ExportError):
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def exported_bytes(sampler: Sampler, fmt: str = "onnx") -> bytes:
    """The file `export_generator` writes, in memory: the sampler's G in its colours, without D's guidance (studies
    record its size)."""
    checked = sampler.drawing.palette_check
    sampler.use(sampler.drawing.unguided().changed(bf16=False, channels_last=False))  # any machine: float32, plain
    graph = PortraitGraph(frozen_generator(sampler.G), sampler.resolution).eval()
    inputs = example_inputs(sampler, 2)  # batch 2: a traced batch of 1 could be specialised to a constant
    meta = export_metadata(sampler)
    if checked:  # the run draws with the palette check: the caller redraws with the same rules (docs/export.md)
        meta["palette_check"] = {
            "rounds": checked,
            "rules": "heroportraits.data.palette_labels",
            **sampler.palette_rules,
        }
    with torch.no_grad():
        return (_export_onnx if fmt == "onnx" else _export_torchscript)(graph, inputs, meta)


def run_exported(path: str | Path, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Run an exported file (format from its suffix: .onnx under onnxruntime, else TorchScript)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["image"], {"noise": noise, "labels": labels})[0]
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(noise), torch.from_numpy(labels)).numpy()


def read_metadata(path: str | Path) -> dict:
    """The metadata stored in an exported file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props[METADATA_KEY])
    files = {f"{METADATA_KEY}.json": ""}
    torch.jit.load(str(path), _extra_files=files)
    return json.loads(files[f"{METADATA_KEY}.json"])
