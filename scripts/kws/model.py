"""DS-CNN (depthwise-separable CNN, Zhang et al. 2017, "Hello Edge: Keyword Spotting on
Microcontrollers"), adapted to a 129x124 linear-frequency spectrogram.

The first convolution strides 4 in frequency and 2 in time: 129 linear bins carry far more
frequency detail than keyword spotting needs (the paper's input is 10 MFCCs), and this is
what keeps the whole network near 15 M multiply-accumulates, a few milliseconds on a Pi
Zero 2 W core. Widths are the paper's DS-CNN-S (64 channels, 4 separable blocks).
"""

from __future__ import annotations

import keras
from keras import layers

from . import config as C


def _ds_block(x, stride, width: int, reg):
    """Depthwise 3x3 (with `stride`) then pointwise 1x1 to `width`, each with BN + ReLU."""
    x = layers.DepthwiseConv2D((3, 3), strides=stride, padding="same", use_bias=False,
                               depthwise_regularizer=reg)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(width, (1, 1), use_bias=False, kernel_regularizer=reg)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


STEM_KERNEL = (10, 4)


def _stem(inp, width: int, strides, reg, legacy: bool = False):
    """The 10x4 first convolution, written so that XNNPACK runs it fast.

    When the time stride equals the kernel's 4 frames (every layout here), the windows do not
    overlap in time, so folding each run of 4 frames into channels (a free reshape: frames are
    the innermost axis) and convolving 10x1 over 4 channels is the same function, weight for
    weight: a kernel of shape (10, 4, 1, C) is the same numbers as (10, 1, 4, C). XNNPACK
    runs a one-channel convolution about 4x slower per multiply-accumulate than a four-channel
    one; measured in LiteRT on x86-64, the stem of the pyramid fell from 46 to 11 us.
    `legacy_stem_kernel` converts weights saved with the plain 10x4 layout.
    """
    kh, kw = STEM_KERNEL
    sh, sw = strides
    if legacy or sw != kw or C.N_FRAMES % kw:
        return layers.Conv2D(width, STEM_KERNEL, strides=strides, padding="same",
                             use_bias=False, kernel_regularizer=reg)(inp)
    x = layers.Reshape((C.N_BINS, C.N_FRAMES // kw, kw), name="frames_to_channels")(inp)
    return layers.Conv2D(width, (kh, 1), strides=(sh, 1), padding="same", use_bias=False,
                         kernel_regularizer=reg, name="stem")(x)


def legacy_stem_kernel(kernel):
    """A stem kernel saved as (10, 4, 1, C) in the layout `_stem` builds, (10, 1, 4, C)."""
    kh, kw = STEM_KERNEL
    if kernel.shape[:3] == (kh, kw, 1):
        return kernel.reshape(kh, 1, kw, kernel.shape[3])
    return kernel


def _ds_cnn(name: str, stem_width: int, stem_strides, blocks, dropout: float,
            n_classes: int = len(C.LABELS), l2: float = 1e-4,
            legacy_stem: bool = False, model_name: str | None = None) -> keras.Model:
    """A 10x4 stem convolution, separable `blocks` of (stride, width), average pool, dense."""
    reg = keras.regularizers.L2(l2) if l2 else None
    inp = keras.Input((C.N_BINS, C.N_FRAMES, 1), name="features")
    x = _stem(inp, stem_width, stem_strides, reg, legacy_stem)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for stride, width in blocks:
        x = _ds_block(x, stride, width, reg)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(n_classes, kernel_regularizer=reg)(x)
    out = layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, out, name=model_name or name)


def ds_cnn(width: int = 64, blocks: int = 4, **kw) -> keras.Model:
    """DS-CNN-S: 64 channels throughout, the stem striding 4x4, one stride-2 block."""
    layout = [((2, 2) if b == 0 else (1, 1), width) for b in range(blocks)]
    return _ds_cnn("ds_cnn", width, (4, 4), layout, dropout=0.25, **kw)


PYRAMID = [((1, 2), 96), (2, 128), (1, 128), (1, 128), (2, 192), (1, 192)]
# About 60 % of the pyramid's multiply-accumulates: for the per-window cost on slow CPUs.
PYRAMID_LITE = [((1, 2), 64), (2, 96), (1, 96), (1, 96), (2, 160), (1, 160)]


def ds_cnn_pyramid(stem: int = 64, blocks=PYRAMID, **kw) -> keras.Model:
    """DS-CNN with a MobileNet-style pyramid: the grid shrinks as the channels grow.

    The flat DS-CNN-S keeps 64 channels on a 17x16 grid; this one strides the first
    convolution 8 in frequency (each output still sees 10 bins), then halves the grid twice
    while widening 64 -> 96 -> 128 -> 192. Same multiply-accumulates (~8 M), five times the
    parameters (130 k, 180 KiB int8), and faster in LiteRT (fewer wide layers on a large
    grid). It fits the training voices far better than DS-CNN-S; on held-out voices it is
    about the same, so capacity was not what limited the first model.
    """
    return _ds_cnn("ds_cnn_pyramid", stem, (8, 4), blocks, dropout=0.2, **kw)


ARCHITECTURES = {
    "ds-cnn-s": ds_cnn,
    "ds-cnn-pyramid": ds_cnn_pyramid,
    "ds-cnn-pyramid-lite": lambda **kw: ds_cnn_pyramid(stem=48, blocks=PYRAMID_LITE, **kw),
}


def build(arch: str, legacy_stem: bool = False, name: str | None = None) -> keras.Model:
    """The named network; `legacy_stem` builds the plain 10x4 stem (see `_stem`); `name`
    renames the Keras model (a distillation teacher must not share the student's name)."""
    if arch not in ARCHITECTURES:
        raise SystemExit(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](legacy_stem=legacy_stem, model_name=name)


def load_weights(model: keras.Model, arch: str, path) -> None:
    """Loads `path` into `model` (built by `build(arch)`), also from files saved before the
    stem was folded (their stem kernel is (10, 4, 1, C); every other weight is unchanged)."""
    try:
        model.load_weights(path)
        return
    except ValueError:
        legacy = build(arch, legacy_stem=True, name=f"{model.name}_legacy")
        legacy.load_weights(path)  # raises if the file fits neither layout
    weights = legacy.get_weights()
    weights[0] = legacy_stem_kernel(weights[0])
    model.set_weights(weights)


class SpecAugment(layers.Layer):
    """Random frequency and time masks (Park et al. 2019), active only while training."""

    def __init__(self, freq_mask=16, time_mask=16, n_masks=2, seed=0, **kw):
        super().__init__(**kw)
        self.freq_mask, self.time_mask, self.n_masks = freq_mask, time_mask, n_masks
        self.seed_gen = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        from keras import ops  # noqa: PLC0415

        b = ops.shape(x)[0]
        fi = ops.reshape(ops.arange(C.N_BINS), (1, C.N_BINS, 1, 1))
        ti = ops.reshape(ops.arange(C.N_FRAMES), (1, 1, C.N_FRAMES, 1))
        keep = ops.ones_like(x)
        for _ in range(self.n_masks):
            w = keras.random.randint((b, 1, 1, 1), 0, self.freq_mask, seed=self.seed_gen)
            s = keras.random.randint((b, 1, 1, 1), 0, C.N_BINS - self.freq_mask,
                                     seed=self.seed_gen)
            keep = keep * ops.cast(ops.logical_or(fi < s, fi >= s + w), x.dtype)
            w = keras.random.randint((b, 1, 1, 1), 0, self.time_mask, seed=self.seed_gen)
            s = keras.random.randint((b, 1, 1, 1), 0, C.N_FRAMES - self.time_mask,
                                     seed=self.seed_gen)
            keep = keep * ops.cast(ops.logical_or(ti < s, ti >= s + w), x.dtype)
        return x * keep


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one inference (conv, depthwise and dense layers)."""
    total = 0
    for l in model.layers:
        if isinstance(l, layers.DepthwiseConv2D):
            _, h, w, c = l.output.shape
            total += h * w * c * l.kernel_size[0] * l.kernel_size[1]
        elif isinstance(l, layers.Conv2D):
            _, h, w, c = l.output.shape
            cin = l.input.shape[-1]
            total += h * w * c * cin * l.kernel_size[0] * l.kernel_size[1]
        elif isinstance(l, layers.Dense):
            total += l.input.shape[-1] * l.units
    return int(total)
