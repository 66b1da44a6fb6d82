"""The check that the train / validation / test split leaks nothing.

A figure on the test split is only worth something if nothing in it was trained on or
chosen with: no recorded speaker, espeak-ng variant, room, background recording or real
prompt may sit in two splits. `check` returns every violation it finds (an empty list means
clean); `scripts/test_train_smoke.py` runs it on the real settings, rooms and backgrounds,
and on a planted leak to show it would notice one.

It compares by content as well as by name: the same sound filed under two names (GCompris
ships some effects in more than one bundle) is still one sound.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from . import config as C
from .synth import Setting

SPLITS = ("train", "val", "test")


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


def _shared(where: dict[str, set[str]], what: str) -> list[str]:
    return [f"{what} {k!r} is in {' and '.join(sorted(v))}" for k, v in sorted(where.items())
            if len(v) > 1]


def check_voices(settings: list[Setting]) -> list[str]:
    problems = []
    speaker: dict[str, set[str]] = defaultdict(set)
    variant: dict[str, set[str]] = defaultdict(set)
    family: dict[str, set[str]] = defaultdict(set)
    for s in settings:
        family[s.family].add(s.split)
        try:
            speaker[C.recorded_speaker(s.engine, s.voice)].add(s.split)
        except KeyError as e:
            problems.append(str(e))
        if s.engine == "espeak" and "+" in s.voice:
            variant[s.voice.split("+", 1)[1]].add(s.split)
    problems += _shared(family, "family")
    problems += _shared(speaker, "recorded speaker")
    problems += _shared(variant, "espeak-ng variant")
    return problems


def check_sounds(kind: str, parts: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """`parts`: {split: {name: audio}} for rooms, backgrounds or real speech."""
    names: dict[str, set[str]] = defaultdict(set)
    content: dict[str, set[str]] = defaultdict(set)
    first_name: dict[str, str] = {}
    for split, items in parts.items():
        for name, audio in items.items():
            names[name].add(split)
            d = _digest(audio)
            content[d].add(split)
            first_name.setdefault(d, name)
    problems = _shared(names, kind)
    problems += [f"{kind} {first_name[d]!r} (same audio under another name) is in "
                 f"{' and '.join(sorted(v))}" for d, v in content.items() if len(v) > 1]
    return problems


def check_words() -> list[str]:
    """Confuser words (homophones, words containing a keyword) must never be `unknown`."""
    return [f"confuser {w!r} is used as `unknown` (add it to config.NOT_UNKNOWN)"
            for w in C.CONFUSERS if w in C.UNKNOWN_WORDS and w not in C.NOT_UNKNOWN]


def check(settings: list[Setting], rooms: dict[str, list[tuple[str, np.ndarray]]],
          backgrounds: dict[str, dict[str, np.ndarray]],
          speech: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """Every way the split leaks, as sentences; [] when it is clean."""
    return (check_voices(settings)
            + check_sounds("room", {k: dict(v) for k, v in rooms.items()})
            + check_sounds("background", backgrounds)
            + check_sounds("real-speech prompt", speech)
            + check_words())


def describe(settings: list[Setting], rooms, backgrounds, speech) -> dict:
    """What each split holds, for the model card and metrics.json."""
    out = {}
    for split in SPLITS:
        ss = [s for s in settings if s.split == split]
        out[split] = {
            "families": sorted({s.family for s in ss}),
            "recorded_speakers": sorted({C.recorded_speaker(s.engine, s.voice) for s in ss}),
            "espeak_variants": sorted({s.voice.split("+", 1)[1] for s in ss
                                       if s.engine == "espeak" and "+" in s.voice}),
            "rooms": [name for name, _ in rooms.get(split, [])],
            "backgrounds": len(backgrounds.get(split, {})),
            "real_speech_prompts": len(speech.get(split, {})),
        }
    return out
