"""Pins every file the feature contract (kws.toml) names by its sha256.

The Rust runtime refuses a model file whose sha256 differs from its pin (and a contract without
pins), because LiteRT crashes on damaged files and only the pin catches every damaged byte. So
whatever writes a kws.toml calls `pin(path)` once the files it names are in place.

    [model] file            -> [model] sha256
    [embedding] mel_file    -> [embedding] mel_sha256
    [embedding] embedding_file -> [embedding] embedding_sha256
    [adapt] replay_file     -> [adapt] replay_sha256   (adapt_pack.py)
    [adapt] layout_file     -> [adapt] layout_sha256
    [adapt] calibration_file -> [adapt] calibration_sha256   (optional; written by
            `cargo bench --bench kws_stream_eval -- --calibration`)
    [combine] file          -> [combine] sha256   (owner models by `chatterbox adapt`: the
            shipped head kept beside the adapted one)
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

# (table, file key, pin key)
PINNED_KEYS = [
    ("model", "file", "sha256"),
    ("embedding", "mel_file", "mel_sha256"),
    ("embedding", "embedding_file", "embedding_sha256"),
    ("adapt", "replay_file", "replay_sha256"),  # written by adapt_pack.py
    ("adapt", "layout_file", "layout_sha256"),
    ("adapt", "calibration_file", "calibration_sha256"),
    ("combine", "file", "sha256"),
]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pin(toml_path: Path) -> dict[str, str]:
    """Writes the sha256 of every file `toml_path` names next to it; returns {file: sha256}.

    Refuses (SystemExit naming the file) when a named file is missing: a contract must never
    pin a file that is not there.
    """
    toml_path = Path(toml_path)
    text = toml_path.read_text()
    data = tomllib.loads(text)
    pins: dict[str, str] = {}
    lines = text.splitlines()
    for table, file_key, pin_key in PINNED_KEYS:
        if table not in data or file_key not in data[table]:
            continue
        target = toml_path.parent / data[table][file_key]
        if not target.is_file():
            raise SystemExit(f"{toml_path}: [{table}] {file_key} names {target}, which is missing")
        digest = sha256_of(target)
        pins[data[table][file_key]] = digest
        lines = _set_in_table(lines, table, file_key, pin_key, digest)
    toml_path.write_text("\n".join(lines) + "\n")
    return pins


def _set_in_table(lines: list[str], table: str, file_key: str, pin_key: str, value: str) -> list[str]:
    """Replaces `pin_key = ...` in [table], or inserts it after `file_key = ...`."""
    out, current, done = [], None, False
    pin_re = re.compile(rf"^\s*{re.escape(pin_key)}\s*=")
    file_re = re.compile(rf"^\s*{re.escape(file_key)}\s*=")
    for line in lines:
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            current = header.group(1).strip()
        if current == table and pin_re.match(line):
            continue  # dropped; rewritten after the file line
        out.append(line)
        if current == table and file_re.match(line) and not done:
            out.append(f'{pin_key} = "{value}"')
            done = True
    return out
