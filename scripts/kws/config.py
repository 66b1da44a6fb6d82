"""Constants shared by every stage: classes, word lists, voice families and the split.

The split is by *recorded speaker*: a voice family listed in TEST_FAMILIES or VAL_FAMILIES
never contributes a single clip to training, and rooms, background recordings, espeak-ng
variants and the real speech are split three ways as well, so the test figures measure
voices and acoustics nothing was trained or chosen on. `protocol_split.check` verifies it.
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
# What the toy asks its owner to say besides the keywords when it learns their voice (`adapt`
# trains them as `unknown`: without the owner's own non-keywords, a head taught only the owner's
# keywords starts hearing keywords in everything that voice says). Disjoint from every word the
# shipped heads train or are measured on (asserted below), so the trial of adapt_trial.py
# measures the owner's voice on words it never heard from them. adapt_pack.py writes them into
# the model's kws.toml, where `chatterbox enroll` and the toy read them.
ENROLL_OTHER_WORDS = ["elephant", "rainbow", "cookie", "balloon", "dinosaur", "pickle",
                      "sunshine", "umbrella", "chocolate", "hippo", "lunch time", "tickle me"]
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
# A family is one RECORDED speaker (or, for espeak-ng's formant synthesizer, one accent:
# its pronunciation rules). Engines that render the same recordings belong to the SAME
# family whatever the engine is called, so the split never leaks a speaker:
# - CSTR "Roger": festival's rab_diphone, festival's en1_mbrola and espeak-ng's mb-en1 are
#   all built from Roger's diphones (MBROLA en1's README; festival's rab_diphone.scm and
#   en1_mbrola.scm) -> one family, `cstr-roger`.
# - festival's us1/us2/us3_mbrola and espeak-ng's mb-us1/2/3 are the same MBROLA databases.
# - flite's kal16 and festival's kal_diphone are CMU's Kal; flite's slt and festival's HTS
#   slt are CMU ARCTIC's SLT.
# RECORDED_SPEAKER below says the same thing per (engine, voice) independently of the
# family tables, so `protocol_split.check` can catch a family table that disagrees with it.
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
# espeak-ng variants (pitch, formant and voicing settings laid over an accent) are split
# too: before, every accent drew from all variants, so the test accent's "unseen voice"
# was a seen variant with other pronunciation rules. Each split has its own set, with male,
# female and klatt-voiced variants in each; variants derived from one another (iven..iven4,
# Gene/Gene2, edward/edward2, steph..steph3, whisper/whisperf) stay together.
ESPEAK_VARIANTS_TEST = ["m3", "m7", "f2", "f5", "klatt4", "Alicia", "belinda", "Denis",
                        "Gene", "Gene2", "Hugo", "linda", "quincy", "travis", "grandma"]
ESPEAK_VARIANTS_VAL = ["m5", "f4", "klatt2", "Andrea", "boris", "david", "iven", "iven2",
                       "iven3", "iven4", "Lee", "shelby", "norbert"]
ESPEAK_VARIANTS_TRAIN = [v for v in ESPEAK_VARIANTS
                         if v not in ESPEAK_VARIANTS_TEST and v not in ESPEAK_VARIANTS_VAL]
MBROLA_EN = ["us1", "us2", "us3", "en1"]
MBROLA_FOREIGN = ["de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "nl2", "af1",
                  "sw1", "sw2", "pl1", "hu1", "gr2", "ro1"]
# espeak-ng voice names for the foreign databases speaking English.
MBROLA_FOREIGN_VOICE = {db: f"mb-{db}-en" for db in MBROLA_FOREIGN}
ROGER = "cstr-roger"
MBROLA_FAMILY = {"en1": ROGER}  # an MBROLA database whose speaker has another family name
FESTIVAL_VOICES = {  # festival voice -> family
    "kal_diphone": "cmu-kal", "ked_diphone": "cmu-ked", "rab_diphone": ROGER,
    "don_diphone": "cstr-don", "cmu_us_slt_arctic_hts": "cmu-slt",
    "us1_mbrola": "mbrola-us1", "us2_mbrola": "mbrola-us2", "us3_mbrola": "mbrola-us3",
    "en1_mbrola": ROGER,
}
FLITE_VOICES = {"kal16": "cmu-kal", "slt": "cmu-slt", "awb": "cmu-awb", "rms": "cmu-rms"}
PICO_VOICES = {"en-US": "pico-en-us", "en-GB": "pico-en-gb"}

# Who actually recorded each (engine, voice), written from the voices' own documentation,
# not from the family tables above (the split check compares the two).
RECORDED_SPEAKER = {
    ("festival", "rab_diphone"): "CSTR Roger", ("festival", "en1_mbrola"): "CSTR Roger",
    ("espeak", "mb-en1"): "CSTR Roger",
    ("festival", "kal_diphone"): "CMU Kal", ("flite", "kal16"): "CMU Kal",
    ("festival", "cmu_us_slt_arctic_hts"): "CMU SLT", ("flite", "slt"): "CMU SLT",
    ("festival", "ked_diphone"): "CMU Ked", ("festival", "don_diphone"): "CSTR Don",
    ("flite", "awb"): "CMU AWB", ("flite", "rms"): "CMU RMS",
    ("pico", "en-US"): "SVOX en-US", ("pico", "en-GB"): "SVOX en-GB",
    ("piper", "en_US-joe-medium"): "piper joe", ("hibari", "heart"): "hibari heart",
    **{("festival", f"{db}_mbrola"): f"MBROLA {db}" for db in ("us1", "us2", "us3")},
    **{("espeak", f"mb-{db}"): f"MBROLA {db}" for db in ("us1", "us2", "us3")},
    **{("espeak", f"mb-{db}-en"): f"MBROLA {db}" for db in MBROLA_FOREIGN},
}


def recorded_speaker(engine: str, voice: str) -> str:
    """The recording behind a voice; espeak-ng's own voices are '<accent>' (formant rules,
    no recording) and their variant is checked separately."""
    if (engine, voice) in RECORDED_SPEAKER:
        return RECORDED_SPEAKER[(engine, voice)]
    if engine == "espeak" and "+" in voice:
        return "espeak " + voice.split("+", 1)[0]
    raise KeyError(f"no recorded speaker known for {engine} voice {voice!r}: add it to "
                   "config.RECORDED_SPEAKER (and its family to a split)")


# Held out for the reported test figures, each for a reason:
# - pico-en-us, pico-en-gb: a whole engine (SVOX Pico) absent from train and validation;
# - hibari-heart: the only neural voice besides piper-joe (train), a different engine;
# - cmu-awb: flite's clustergen voice, a speaker in no other split;
# - cstr-don: a British diphone speaker (Roger, the other CSTR diphone speaker, trains);
# - mbrola-de2, -fr4, -sw2: accented English from foreign MBROLA speakers; other speakers
#   of the same languages train, these three recordings never do;
# - espeak-en-029: an accent (Caribbean rules) no other split uses, with its own variants.
# Roger (rab + en1) used to be split across train and test; he is now wholly in TRAIN,
# where the models trained before this split already had him (festival rab_diphone), so
# those models can still be measured on this test split honestly.
TEST_FAMILIES = {
    "pico-en-us", "pico-en-gb", "hibari-heart", "cmu-awb", "cstr-don", "mbrola-de2",
    "mbrola-fr4", "mbrola-sw2", "espeak-en-029",
}
# Held out from training too; everything that is CHOSEN (epoch, candidate, int8 vs float,
# detector settings, fine-tune keep/discard) is chosen on these, never on test:
# - mbrola-us2 (a US diphone speaker), cmu-ked (an American diphone speaker), mbrola-de5
#   (accented English), espeak-en-gb-x-gbclan (an accent with its own variants);
# - cmu-rms (flite clustergen, moved from test) so that validation also has a voice of a
#   family of engines like the test's flite one, not only diphone/formant voices.
VAL_FAMILIES = {"mbrola-us2", "cmu-ked", "mbrola-de5", "espeak-en-gb-x-gbclan", "cmu-rms"}


def split_of(family: str) -> str:
    if family in TEST_FAMILIES:
        return "test"
    if family in VAL_FAMILIES:
        return "val"
    return "train"


def espeak_variants(split: str) -> list[str]:
    """The espeak-ng variants an accent of `split` may use."""
    return {"train": ESPEAK_VARIANTS_TRAIN, "val": ESPEAK_VARIANTS_VAL,
            "test": ESPEAK_VARIANTS_TEST}[split]


def engine_group(family: str) -> str:
    """Coarse grouping used for per-family reporting."""
    return family.split("-")[0]


# --- rooms, backgrounds and real speech: split three ways too --------------------------
# Validation used to share the test rooms and backgrounds, so choosing an epoch or a
# candidate already saw the test acoustics. Now each is in exactly one split (sounds.py
# applies these rules). The test part is the same as before the three-way split (rooms at
# positions 0, 8, 16 ... of sounds.load_rirs' list; backgrounds with stable bucket 0 of 10),
# and validation's is the other half of what used to be held out (positions 4, 12, 20 ...;
# bucket 5 of 10), so models trained before this split never heard either.
ROOM_PERIOD = 8  # position % 8: 0 -> test, 4 -> val, anything else -> train
BACKGROUND_BUCKETS = 10  # stable bucket of the name: 0 -> test, 5 -> val, else train
# The real recorded speech (asterisk prompts, never trained on): a fixed half by a stable
# hash of the prompt's name tunes (validation), the other half is only measured (test).
SPEECH_BUCKETS = 2  # 0 -> val, 1 -> test

# Homophones of a keyword and words that contain one, said by validation/test voices and
# streamed on their own: what a user feels as "it reacted when I said 'write'". Never
# trained on (even the ones also in UNKNOWN_WORDS are excluded there, see NOT_UNKNOWN).
CONFUSERS = ["write", "rite", "know", "ago", "going", "goes", "yesterday", "upstairs",
             "upset", "stopping", "downstairs", "leftover", "nobody", "alright", "gopher",
             "lefty", "downy"]


assert not ({w.lower() for w in ENROLL_OTHER_WORDS}
            & {w.lower() for w in KEYWORDS + UNKNOWN_WORDS + CONFUSERS}), \
    "ENROLL_OTHER_WORDS must be words no head trains or is measured on"
