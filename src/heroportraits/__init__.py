"""hero-portrait-generator: conditional GANs for 64x64 pixel-art hero portraits.

The subpackages are the pipeline, in order (docs/architecture.md draws it):
    data/        sources (procedural, LPC, your own images) -> prepare -> build -> dataset
    models/      generators and discriminators
    training/    config and presets, losses, augmentation, EMA, checkpoints, DDP, the loop
    evaluation/  the dataset's judge, metrics, the evaluation suite
    sample       draw portraits from a checkpoint
    export       the EMA generator as one ONNX / TorchScript file (docs/export.md)
    bench        speed of a training step against the machine's roof
    drawing      sample grids and every plot
    cli          `python -m heroportraits VERB`
    paths        where datasets and artifacts live
"""

__version__ = "0.1.0"
