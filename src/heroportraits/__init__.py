"""hero-portrait-generator: conditional GANs for 64x64 pixel-art hero portraits.

The pipeline, one module per concern:
    procedural   built-in labelled pixel-art portraits (no download needed)
    prepare      any folder of images + labels -> a clean, accounted-for staging set
    build        staging set -> final dataset (dedup, split, dataset.json)
    dataset      load a final dataset into memory as one tensor
    config       dataclass configs and named presets
    models       generators / discriminators
    train        the training loop
    sample       draw portraits from a checkpoint
"""

__version__ = "0.1.0"
