"""Constants shared by every stage: classes, word lists, voice families and the split.

The split is by *speaker*: a voice family listed in TEST_FAMILIES or VAL_FAMILIES never
contributes a single clip to training, so the test figures measure generalization to voices
the model never heard (the synthetic-data equivalent of Speech Commands' speaker split).
"""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
NPERSEG = 255
NOVERLAP = 124
NFFT = 256
N_BINS = NFFT // 2 + 1  # 129
N_FRAMES = 124  # frames scipy.signal.stft gives for 16000 samples with the settings above
LOG_EPSILON = 1e-6

KEYWORDS = ["go", "down", "up", "stop", "yes", "left", "right", "no"]
UNKNOWN = "unknown"
SILENCE = "silence"
LABELS = KEYWORDS + [UNKNOWN, SILENCE]

# Non-keywords for the `unknown` class. Near-misses first: they teach the model the
# boundary, which is what keeps false accepts down in real speech.
NEAR_MISSES = [
    "goat", "gold", "ago", "going", "gopher", "dough", "doe", "toe", "though",
    "town", "gown", "brown", "crown", "dawn", "done", "dune", "downy", "sound", "found",
    "cup", "pup", "sup", "hop", "op", "upon", "shut", "bus", "bump",
    "top", "shop", "step", "stock", "spot", "stomp", "stuff", "stab", "stoke", "cop",
    "yet", "yep", "yell", "mess", "guess", "less", "yak", "yeast", "chess",
    "lift", "lest", "loft", "laughed", "lefty", "leaf", "lend", "lent", "theft",
    "write", "bright", "fright", "night", "light", "ride", "rye", "rifle", "white", "kite",
    "nope", "snow", "note", "knee", "new", "nah", "nose", "noon", "slow", "oh",
]
OTHER_WORDS = [
    # The other Speech Commands words, then everyday words a toy would hear.
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "forward", "backward", "follow", "learn", "visual", "off", "on",
    "hello", "okay", "please", "thanks", "water", "music", "table", "window", "apple",
    "banana", "morning", "yellow", "purple", "coffee", "paper", "mother", "father",
    "baby", "sister", "brother", "teacher", "doctor", "garden", "kitchen", "pizza",
    "rabbit", "monkey", "turtle", "dinner", "later", "maybe", "never", "always",
    "sorry", "again", "open", "close", "jump", "sing", "dance", "play", "sleep", "wait",
    "what", "where", "when", "why", "who", "because", "very", "little", "big", "small",
    "red", "blue", "green", "black", "orange", "button", "record", "story", "robot",
    "animal", "circle", "magic", "party", "tomorrow", "today", "thank you",
    "good night", "how are you", "see you soon", "what is that", "come here",
    "I like it", "let me see", "that is fun", "one more time", "very good",
]
UNKNOWN_WORDS = NEAR_MISSES + OTHER_WORDS
# Synthesized (the word lists above fix the seeded sampling) but never used as `unknown`:
# homophones of a keyword ("write" is "right") and words that begin or end with a whole
# keyword ("going", "ago", "gopher", "lefty", "downy"). Labelling them unknown would teach
# the model to reject the keyword itself.
NOT_UNKNOWN = {"write", "going", "ago", "gopher", "lefty", "downy"}


def default_cache() -> Path:
    """Where synthesized clips and derived arrays live (outside the repository)."""
    env = os.environ.get("CHATTERBOX_KWS_DATA")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "chatterbox" / "kws-data"


# --- voice families -------------------------------------------------------------------
# A family is one speaker identity (or, for espeak-ng, one accent: all its variants share
# one formant synthesizer and one set of pronunciation rules). Engines that render the same
# recorded speaker (festival's us1_mbrola and espeak-ng's mb-us1; flite's kal and festival's
# kal_diphone; flite's slt and festival's HTS slt) belong to the SAME family, so the split
# never leaks a speaker.
ESPEAK_ACCENTS = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
ESPEAK_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "adam", "Alex", "Alicia",
    "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
    "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene", "Gene2", "gustave",
    "Henrique", "Hugo", "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta",
    "Lee", "linda", "marcelo", "Marco", "Mario", "max", "Michael", "michel", "miguel",
    "Mike", "Nguyen", "pablo", "paul", "pedro", "quincy", "RicishayMax", "rob", "robert",
    "steph", "steph2", "steph3", "Tweaky", "zac", "anika", "AnxiousAndy", "grandpa",
    "grandma", "norbert", "sandro", "shelby", "travis", "victor", "whisper", "whisperf",
    "croak",
]
MBROLA_EN = ["us1", "us2", "us3", "en1"]
MBROLA_FOREIGN = ["de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "nl2", "af1",
                  "sw1", "sw2", "pl1", "hu1", "gr2", "ro1"]
# espeak-ng voice names for the foreign databases speaking English.
MBROLA_FOREIGN_VOICE = {db: f"mb-{db}-en" for db in MBROLA_FOREIGN}
FESTIVAL_VOICES = {  # festival voice -> family
    "kal_diphone": "cmu-kal", "ked_diphone": "cmu-ked", "rab_diphone": "cstr-rab",
    "don_diphone": "cstr-don", "cmu_us_slt_arctic_hts": "cmu-slt",
    "us1_mbrola": "mbrola-us1", "us2_mbrola": "mbrola-us2", "us3_mbrola": "mbrola-us3",
    "en1_mbrola": "mbrola-en1",
}
FLITE_VOICES = {"kal16": "cmu-kal", "slt": "cmu-slt", "awb": "cmu-awb", "rms": "cmu-rms"}
PICO_VOICES = {"en-US": "pico-en-us", "en-GB": "pico-en-gb"}

# Held out for the reported test figures: two whole engines (pico, hibari), a whole
# flite/clustergen pair, British diphone speakers, foreign-accented mbrola speakers and a
# whole espeak-ng accent.
TEST_FAMILIES = {
    "pico-en-us", "pico-en-gb", "hibari-heart", "cmu-awb", "cmu-rms", "mbrola-en1",
    "cstr-don", "mbrola-de2", "mbrola-fr4", "mbrola-sw2", "espeak-en-029",
}
# Held out from training too, used only to pick the best checkpoint.
VAL_FAMILIES = {"mbrola-us2", "cmu-ked", "mbrola-de5", "espeak-en-gb-x-gbclan"}


def split_of(family: str) -> str:
    if family in TEST_FAMILIES:
        return "test"
    if family in VAL_FAMILIES:
        return "val"
    return "train"


def engine_group(family: str) -> str:
    """Coarse grouping used for per-family reporting."""
    return family.split("-")[0]
