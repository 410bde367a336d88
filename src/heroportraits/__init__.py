"""hero-portrait-generator: conditional generative models (GANs, flow matching) for 64x64 pixel-art hero portraits.

The subpackages are the pipeline, in order (docs/architecture.md draws it). Every module:

data                     sources (procedural, LPC, your own images) -> prepare -> build -> dataset
  data.procedural        the built-in portraits: labelled pixel art drawn from code, no download
  data.procedural_parts  the procedural drawing kit: index canvas, shape masks, colour ramps
  data.lpc               a labelled portrait folder composed from a Universal LPC spritesheet checkout
  data.lpc_recipes       the LPC tables: which art layers make which hero class, credit rules (lpc_credits.tsv)
  data.lpc_variety       how varied the LPC portraits of one class are (`lpc --variety low|high`)
  data.images            reading any image, crisp resizing to 64x64, tiling (numpy, no torch)
  data.palette_labels    automatic palette labels from colour statistics
  data.oklab             sRGB <-> OKLab and colour differences (dE), numpy
  data.palette_quantise  a dataset's palette: train pixels clustered in OKLab, its error report, the `palette` verb
  data.attributes        attribute vocabularies: the names and values that condition every model
  data.curation          review grids and the overrides file (exclude / relabel)
  data.prepare           any folder of images + labels -> a checked staging set with a report
  data.build             staging set -> final dataset: duplicates removed, stratified split
  data.dataset           the final dataset format, loaded into memory for training
  data.face_regions      where composed sources keep their faces (the face box evaluate scores apart)
  data.colour_stats      how a dataset uses colour (measured at build): the colour budget drawing adapts to
  data.palette_files     a user's palette from .hex / .gpl / swatch files or a list (draw.palette)
  data.figures           the data stage's pictures: previews, review grids, counts, duplicates, examples
models                   build_models: G and D (none for the flow family) from a ModelConfig and the vocabulary
  models.config          ModelConfig (the networks) and DrawOptions (how portraits are drawn by default)
  models.conditioning    learned attribute embeddings
  models.layers          conditional batch-norm, projection head, spectral normalisation
  models.dcgan           the conditional DCGAN
  models.resnet          residual G and D (SNGAN / BigGAN)
  models.palette_output  G's output layer: RGB, or palette-indexed pixels (per-portrait or dataset palette)
  models.colour_quantise  an RGB sample's own palette: per-portrait k-means in OKLab (draw.rgb_colours)
  models.fastgan         FastGAN parts: skip-layer excitation in G, D's self-supervised decoders
  models.head_classifier D's head classifier: the class named from the portrait's top rows alone
  models.stylegan        StyleGAN2's generator: mapping network, modulated convs, noise inputs, skip outputs
  models.flow            the flow family: a velocity U-Net, its Euler / Heun sampler with guidance, the loss
  models.precision       where bf16 is native, and the autocast training and drawing use there
  models.layout          channels-last (NHWC) or plain memory, as train.channels_last / draw.channels_last ask
training                 the training stage
  training.config        Config (model, train, draw), --set parsing, ranges and the checks between fields
  training.presets       the presets as one table: name, base, one line, overrides
  training.losses        GAN losses and regularisers as free functions
  training.augment       DiffAugment / ADA operations and the instance-noise schedule
  training.ema           the EMA copy of G
  training.pixel_art     the training side of the palette output and the self-supervised D (tau, quarter, reals)
  training.checkpoint    atomic checkpoint saves and safe loads
  training.distributed   DDP: process group, sharding, wrapping and unwrapping networks
  training.trainer       Trainer.step: one GAN iteration (D phases, G phase, EMA, ADA) and its state
  training.flow_trainer  FlowTrainer.step: one flow-matching iteration, with the GAN Trainer's outside
  training.distil        reflow: a flow run's pairs (noise, its portrait) teach a few-step student
  training.setup         setup_training, checkpoint_state (the one checkpoint dict), restore
  training.run_files     a run's files: metrics.csv, sample grids, eval.jsonl / best.pt, checkpoints
  training.guards        divergence checks and SIGINT / SIGTERM: stop early without losing work
  training.loop          train(): the loop
  training.figures       the training stage's pictures: the attribute grid of samples, loss and metric curves
evaluation               the evaluation stage
  evaluation.judge       a CNN trained on the dataset's TRAIN split; every metric uses its features
  evaluation.metrics     metric functions: arrays in, numbers out
  evaluation.scores      every score of generated portraits against real VAL, the floor, quick_fd
  evaluation.masks       an RGBA model's masks against real ones: binary alpha, figure share, IoU, clean cuts
  evaluation.report      the scores beside their floor as DataFrames and as the printed table
  evaluation.evaluate    a checkpoint (drawn as asked) or a folder, scored end to end and written
  evaluation.during_training  TrainTimeScorer: what train() calls for eval.jsonl / best.pt
  evaluation.headgear    does the class change the headgear (LPC head items, same noise); `headgear`
  evaluation.tone        tone per palette label (hue / lightness spread) and palette drift
  evaluation.figures     the evaluation stage's pictures: closest pairs to TRAIN, a row per attribute value
study                    studies: config variants x seeds x a budget, trained, evaluated, tabulated
  study.spec             a study spec (TOML / JSON) checked field by field
  study.runner           runs a study, resumable and shardable; the `study` verb
  study.tables           results.csv, summary.csv and the verdict rule
  study.figures          a study's pictures: bars, train-time curves, the same noise across runs
sampling                 the sampling stage: portraits drawn from a trained checkpoint
  sampling.sampler       Sampler: a checkpoint's EMA generator, its conditions and how it draws
  sampling.portraits     what `sample` writes: numbered PNGs + labels.csv, or a grid
  sampling.selection     D-guided sampling: noise refined by D's classifier, or the best of R candidates
  sampling.palette_check off-palette portraits (read by the palette rules) redrawn from new noise
  sampling.colour_budget a merged adapted drawing's colour budget, counted on the model's own portraits
  sampling.walks         latent walks (noise or an attribute) as a strip PNG and a GIF, `sample --interpolate`
  sampling.widgets       notebook 03's interactive sampler (ipywidgets): choices -> grid, save
  sampling.transparency  transparent backgrounds for RGB portraits: the border's background cut, `--transparent`
  sampling.sheets        sprite sheets: an atlas PNG and its frame JSON (Phaser / PixiJS / TexturePacker), `--sheet`
  sampling.export        the EMA generator as one ONNX / TorchScript file
bench                    speed of a training step against the machine's roof
figures                  what every picture shares: saving a figure, pixels shown crisp
progress                 progress bars: live on a terminal or in Jupyter, plain lines in logs
cli                      `python -m heroportraits VERB`: every verb registered in one place
  cli.options            the options several verbs share (counts, seeds, devices, drawing)
  cli.data               the data verbs: procedural, lpc, prepare, build, palette
  cli.training           the `train` verb
  cli.sampling           the sampling verbs: sample, export
  cli.evaluation         the evaluation verbs: evaluate, headgear
  cli.bench              the `bench` verb
  cli.study              the `study` verb
__main__                 runs cli.main
paths                    where datasets and artifacts live
errors                   HeroError, the one base of errors a user can fix
"""

__version__ = "0.1.0"
