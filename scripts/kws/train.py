"""Training, export and checking of the keyword model.

Training keeps the weights of the epoch with the best accuracy on the validation voice
families (never seen in training, never used for the reported test figures).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from . import config as C


def setup_tf(threads: int, seed: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # noqa: PLC0415
    import keras  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    return tf, keras


def norm_stats(X: np.ndarray, seed: int) -> tuple[float, float]:
    """Scalar mean/std of log-magnitudes over (a sample of) the training set."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), size=min(len(X), 4000), replace=False)
    s = X[np.sort(idx)].astype(np.float64)
    return float(s.mean()), float(s.std())


def normalize_inplace(X: np.ndarray, mean: float, std: float, chunk: int = 2048) -> np.ndarray:
    for i in range(0, len(X), chunk):
        X[i:i + chunk] = (X[i:i + chunk].astype(np.float32) - mean) / std
    return X


LABEL_SMOOTHING = 0.05


def distillation_loss(alpha: float, temperature: float, n: int = len(C.LABELS)):
    """Hinton et al. 2015 knowledge distillation, for a network whose output is the student's
    probabilities followed by the (frozen) teacher's, both on the same augmented batch.

    `alpha` of the loss is the usual cross-entropy on the labels; the rest is the KL
    divergence from the teacher's to the student's distribution, both softened by
    `temperature` (scaled by T^2 so its gradients keep their size). Softening works on
    probabilities because softmax(log p / T) = softmax(logits / T).
    """
    from keras import losses, ops  # noqa: PLC0415

    def loss(y_true, y_pred):
        s, t = y_pred[:, :n], ops.stop_gradient(y_pred[:, n:])
        hard = losses.categorical_crossentropy(y_true, s, label_smoothing=LABEL_SMOOTHING)
        log_s = ops.log_softmax(ops.log(ops.clip(s, 1e-7, 1.0)) / temperature)
        log_t = ops.log_softmax(ops.log(ops.clip(t, 1e-7, 1.0)) / temperature)
        kl = ops.sum(ops.exp(log_t) * (log_t - log_s), axis=-1)
        return alpha * hard + (1.0 - alpha) * temperature ** 2 * kl

    return loss


def student_accuracy(n: int = len(C.LABELS)):
    """Accuracy of the student half of a distillation network's output."""
    from keras import metrics  # noqa: PLC0415

    def accuracy(y_true, y_pred):
        return metrics.categorical_accuracy(y_true, y_pred[:, :n])

    return accuracy


def train(data, mean, std, epochs: int, seed: int, threads: int, batch: int = 128,
          lr: float = 3e-3, max_steps: int | None = None, arch: str = "ds-cnn-s",
          teacher: tuple[str, Path] | None = None, alpha: float = 0.5,
          temperature: float = 3.0, log=print):
    """Trains `arch` on `data`; with `teacher` = (arch, weights file), distills from it
    (`distillation_loss`). Returns the network without augmentation, and a summary."""
    tf, keras = setup_tf(threads, seed)
    from .model import SpecAugment, build, count_macs, load_weights  # noqa: PLC0415

    Xtr, ytr, _ = data["train"]
    Xva, yva, _ = data["val"]
    core = build(arch)
    log(f"model: {arch}, {core.count_params()} parameters, {count_macs(core) / 1e6:.1f} M MACs")
    inp = keras.Input((C.N_BINS, C.N_FRAMES, 1))
    augmented = SpecAugment(seed=seed)(inp)
    if teacher is None:
        net = keras.Model(inp, core(augmented))
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=LABEL_SMOOTHING)
        metrics = ["accuracy"]
    else:
        t_arch, t_weights = teacher
        tnet = build(t_arch, name="teacher")
        load_weights(tnet, t_arch, t_weights)
        tnet.trainable = False
        log(f"distilling from {t_arch} ({t_weights}), alpha {alpha}, temperature {temperature}")
        out = keras.layers.Concatenate()([core(augmented), tnet(augmented, training=False)])
        net = keras.Model(inp, out)
        loss = distillation_loss(alpha, temperature)
        metrics = [student_accuracy()]
    steps = (len(Xtr) + batch - 1) // batch
    if max_steps:
        steps = min(steps, max_steps)
    sched = keras.optimizers.schedules.CosineDecay(lr * 0.1, decay_steps=steps * epochs,
                                                   alpha=0.02, warmup_target=lr,
                                                   warmup_steps=min(steps, 200))
    net.compile(keras.optimizers.Adam(sched), loss, metrics=metrics)
    ytr1 = keras.utils.to_categorical(ytr, len(C.LABELS))
    yva1 = keras.utils.to_categorical(yva, len(C.LABELS))

    class Best(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.weights, self.epoch, self.t0 = -1.0, None, -1, time.time()

        def on_epoch_end(self, epoch, logs=None):
            acc = float(logs.get("val_accuracy", 0.0))
            if acc > self.best:
                self.best, self.weights, self.epoch = acc, core.get_weights(), epoch
            log(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f} "
                f"acc {logs['accuracy']:.3f} val_acc {acc:.3f} "
                f"(best {self.best:.3f} @ {self.epoch + 1}) {time.time() - self.t0:.0f}s")

    best = Best()
    # The generator shuffles with its own seeded RNG; Keras sees a plain stream of batches.
    rng = np.random.default_rng(seed)

    def gen():
        while True:
            order = rng.permutation(len(Xtr))
            for s in range(steps):
                i = np.sort(order[s * batch:(s + 1) * batch])
                yield Xtr[i].astype(np.float32)[..., None], ytr1[i]

    ds = tf.data.Dataset.from_generator(
        gen, output_signature=(tf.TensorSpec((None, C.N_BINS, C.N_FRAMES, 1), tf.float32),
                               tf.TensorSpec((None, len(C.LABELS)), tf.float32))
    ).prefetch(2)
    net.fit(ds, epochs=epochs, steps_per_epoch=steps,
            validation_data=(Xva.astype(np.float32)[..., None], yva1),
            callbacks=[best], verbose=0)
    if best.weights is not None:
        core.set_weights(best.weights)
    return core, {"best_val_accuracy": best.best, "best_epoch": best.epoch + 1,
                  "epochs": epochs, "steps_per_epoch": steps,
                  "train_seconds": time.time() - best.t0}


def export(core, out_dir: Path, rep_X: np.ndarray, log=print) -> dict[str, Path]:
    """Float and full-int8 .tflite files (int8 input and output tensors)."""
    import tensorflow as tf  # noqa: PLC0415

    import keras  # noqa: PLC0415

    # A SavedModel with a fixed [1, 129, 124, 1] signature: the converter freezes the
    # variables (a concrete function would keep READ_VARIABLE ops) and the runtime sees a
    # static batch of one.
    sm = out_dir / "saved_model"
    shutil.rmtree(sm, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(core)
    archive.add_endpoint(
        "serve", lambda x: core(x, training=False),
        input_signature=[tf.TensorSpec([1, C.N_BINS, C.N_FRAMES, 1], tf.float32)])
    archive.write_out(str(sm), verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(sm))
    fl = out_dir / "kws-float.tflite"
    fl.write_bytes(conv.convert())

    def rep():
        for x in rep_X:
            yield [x.astype(np.float32)[None, :, :, None]]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(sm))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    q = out_dir / "kws-int8.tflite"
    q.write_bytes(conv.convert())
    log(f"export: float {fl.stat().st_size / 1024:.1f} KiB, int8 {q.stat().st_size / 1024:.1f} KiB")
    return {"float": fl, "int8": q}
