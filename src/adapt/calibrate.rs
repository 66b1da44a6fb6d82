//! The owner model's detector threshold, matched to the shipped model's false accepts.
//!
//! Why: adapting makes the head surer of keywords in every voice, and of some things that are
//! not keywords. At the shipped threshold the owner model then acts on more non-keyword
//! speech; at a fixed stricter one it hears fewer of the other voices' keywords, by an amount
//! that differs from owner to owner (docs/adapt-threshold.md). So the threshold is measured,
//! per adaptation: the owner head and the shipped head both listen to the same shipped
//! calibration stream of non-keyword audio (the validation split's: synthetic words of voices
//! the heads were not trained on, words that contain or sound like a keyword, real speech,
//! noise, silence; `adapt_calib.bin`, written by the stream evaluation's `--calibration`
//! mode), through the runtime's own [`Detector`] (for an `either` pair the two side by side
//! that the recognizer runs, [`either_events`]), and the owner model gets the loosest
//! threshold of [`candidates`] at which it makes no more false accepts on that stream than
//! the shipped model does at its own threshold. False accepts are counted as the stream
//! evaluation counts its headline figure: a detection blamed on a word that contains or
//! sounds like a keyword ("know", "downstairs") is counted apart there, so it is not
//! counted here either; those words stay in the stream because what they do to the
//! detector spills over onto the audio after them.
//!
//! The stream is stored as it reaches the head: the speech-embedding frames in order (int8,
//! one scale per frame) and, for every 80 ms hop of the recognizer, which frame ends its
//! window, or that the model did not run there. The frames depend on the mel and embedding
//! models and the hops kept ([`keep_near`]) on the head, so the file names all three by
//! their sha256 and is refused beside other ones. Format (little-endian):
//!
//! ```text
//! magic  b"CBCALIB3"        8 bytes
//! 3 x 64 ASCII        sha256 (hex) of the mel model, the embedding model and the head
//! u32    hop in microseconds
//! u32    embeddings per window (N), u32 dim (96)
//! u32    frames, u32 hops
//! frames x f32        scale of the frame (value = q * scale)
//! frames x dim i8     the quantized frames
//! hops x u32          index one past the window's last frame; u32::MAX: quiet hop
//! hops x u8           1: a detection at this hop is a false accept; 0: it is blamed on a
//!                     word that contains or sounds like a keyword (not counted)
//! ```
//!
//! The head's first layer reads each embedding alone, so it runs once per frame and every
//! hop only pays for the later layers: about 0.2 s for the shipped stream on a PC core.

use std::time::Duration;

use super::net::{Net, OwnerHead};
use crate::kws::detector::{Detection, Detector, DetectorConfig};
use crate::kws::either_detector::EitherDetector;
use crate::kws::meta::is_keyword;

const MAGIC: &[u8; 8] = b"CBCALIB3";
const QUIET: u32 = u32::MAX;
const HEADER: usize = 8 + 3 * 64 + 5 * 4;

/// The largest f32 below 1: a detector threshold must be below 1 (`KwsMeta`).
pub const BELOW_ONE: f32 = f32::from_bits(0x3f7f_ffff);

/// The models a calibration stream was written with (sha256, lowercase hex).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrittenFor {
    pub mel: String,
    pub embedding: String,
    pub head: String,
}

/// The calibration stream, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The models it was written with.
    pub written_for: WrittenFor,
    /// Time between two hops.
    pub hop: Duration,
    /// Embeddings per window.
    pub embeddings: usize,
    /// Values per embedding.
    pub dim: usize,
    /// `frames x dim` values.
    pub frames: Vec<f32>,
    /// Per hop, one past the window's last frame; `None`: the model did not run there (the
    /// energy gate), or the hop is far from anything the shipped head scores near a keyword
    /// ([`keep_near`]). Either way the detector is given silence.
    pub hops: Vec<Option<usize>>,
    /// Per hop, whether a detection there counts as a false accept.
    pub counted: Vec<bool>,
}

/// Decodes the file (already checked against its pin); the head reads `embeddings x dim`.
pub fn parse(bytes: &[u8], embeddings: usize, dim: usize) -> Result<Calibration, String> {
    let header = HEADER;
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err("not a chatterbox calibration stream of this version (bad magic)".into());
    }
    if bytes.len() < header {
        return Err(format!(
            "{} bytes, shorter than its {header}-byte header",
            bytes.len()
        ));
    }
    let sha = |i: usize| -> Result<String, String> {
        let raw = &bytes[8 + 64 * i..8 + 64 * (i + 1)];
        match std::str::from_utf8(raw) {
            Ok(h) if h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(h.to_ascii_lowercase()),
            _ => Err("its header does not name the models it was written with".into()),
        }
    };
    let written_for = WrittenFor {
        mel: sha(0)?,
        embedding: sha(1)?,
        head: sha(2)?,
    };
    let word = |at: usize| {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    };
    let at = 8 + 3 * 64;
    let (hop_us, n, d, frames, hops) = (
        word(at),
        word(at + 4),
        word(at + 8),
        word(at + 12),
        word(at + 16),
    );
    if (n, d) != (embeddings, dim) {
        return Err(format!(
            "windows of {n} x {d} values, but the head reads {embeddings} x {dim}"
        ));
    }
    if hop_us == 0 {
        return Err("a hop of 0 µs".into());
    }
    let need = frames
        .checked_mul(4 + dim)
        .and_then(|f| hops.checked_mul(5).and_then(|h| f.checked_add(h)))
        .and_then(|b| b.checked_add(header));
    match need {
        Some(n) if n == bytes.len() => {}
        Some(n) => {
            return Err(format!(
                "{} bytes, not the {n} its header announces",
                bytes.len()
            ))
        }
        None => return Err("its header announces more bytes than can exist".into()),
    }
    let scales = &bytes[header..header + 4 * frames];
    let data = &bytes[header + 4 * frames..header + (4 + dim) * frames];
    let ends = &bytes[header + (4 + dim) * frames..header + (4 + dim) * frames + 4 * hops];
    let flags = &bytes[header + (4 + dim) * frames + 4 * hops..];
    let mut counted = Vec::with_capacity(hops);
    for (i, &f) in flags.iter().enumerate() {
        match f {
            0 | 1 => counted.push(f == 1),
            _ => return Err(format!("hop {i} has flag {f}")),
        }
    }
    let mut values = Vec::with_capacity(frames * dim);
    for (i, (s, q)) in scales
        .chunks_exact(4)
        .zip(data.chunks_exact(dim.max(1)))
        .enumerate()
    {
        let scale = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        if !scale.is_finite() {
            return Err(format!("frame {i} has scale {scale}"));
        }
        values.extend(q.iter().map(|&b| f32::from(b as i8) * scale));
    }
    let mut out_hops = Vec::with_capacity(hops);
    for (i, e) in ends.chunks_exact(4).enumerate() {
        let end = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        if end == QUIET {
            out_hops.push(None);
        } else if (end as usize) < embeddings || end as usize > frames {
            return Err(format!(
                "hop {i} ends its window at frame {end}, outside {embeddings}..={frames}"
            ));
        } else {
            out_hops.push(Some(end as usize));
        }
    }
    Ok(Calibration {
        written_for,
        hop: Duration::from_micros(hop_us as u64),
        embeddings,
        dim,
        frames: values,
        hops: out_hops,
        counted,
    })
}

/// Encodes a stream (the stream evaluation writes the shipped file with this).
pub fn write(c: &Calibration) -> Vec<u8> {
    let frames = c.frames.len() / c.dim.max(1);
    let mut out = Vec::with_capacity(HEADER + frames * (4 + c.dim) + 5 * c.hops.len());
    out.extend_from_slice(MAGIC);
    for sha in [
        &c.written_for.mel,
        &c.written_for.embedding,
        &c.written_for.head,
    ] {
        let mut field = [b'0'; 64];
        for (f, b) in field.iter_mut().zip(sha.trim().bytes()) {
            *f = b.to_ascii_lowercase();
        }
        out.extend_from_slice(&field);
    }
    for v in [
        c.hop.as_micros() as u32,
        c.embeddings as u32,
        c.dim as u32,
        frames as u32,
        c.hops.len() as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let scales: Vec<f32> = c
        .frames
        .chunks_exact(c.dim)
        .map(|f| f.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0)
        .collect();
    for s in &scales {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for (f, &s) in c.frames.chunks_exact(c.dim).zip(&scales) {
        out.extend(f.iter().map(|x| {
            let q = if s > 0.0 { (x / s).round() } else { 0.0 };
            q.clamp(-127.0, 127.0) as i8 as u8
        }));
    }
    for h in &c.hops {
        let v = h.map_or(QUIET, |e| e as u32);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend(c.counted.iter().map(|&k| u8::from(k)));
    out
}

/// What an owner model answers at every hop of `c`: its adapted head's [`scores`], joined
/// with the shipped head's by its `[combine]` rule when it keeps that beside.
/// `shipped_scores` are `shipped`'s own, already computed (the matching needs them anyway).
pub fn owner_scores(
    owner: OwnerHead<'_>,
    c: &Calibration,
    shipped: &Net,
    shipped_scores: &[Option<Vec<f32>>],
) -> Vec<Option<Vec<f32>>> {
    let out = scores(owner.adapted, c);
    match owner.beside {
        None => out,
        Some(b) => {
            let other;
            let second_scores = if std::ptr::eq(b.shipped(), shipped) {
                shipped_scores
            } else {
                other = scores(b.shipped(), c);
                &other
            };
            joined(&out, second_scores, |o, s| b.join_into(o, s))
        }
    }
}

/// `adapted` joined hop by hop with `shipped` by `join` (quiet hops stay quiet).
fn joined(
    adapted: &[Option<Vec<f32>>],
    shipped: &[Option<Vec<f32>>],
    join: impl Fn(&mut [f32], &[f32]),
) -> Vec<Option<Vec<f32>>> {
    adapted
        .iter()
        .zip(shipped)
        .map(|(o, s)| match (o, s) {
            (Some(o), Some(s)) => {
                let mut o = o.clone();
                join(&mut o, s);
                Some(o)
            }
            (o, _) => o.clone(),
        })
        .collect()
}

/// The head's class probabilities at every hop of the stream (`None`: quiet hop). The
/// first layer, which reads one embedding at a time, runs once per frame.
pub fn scores(net: &Net, c: &Calibration) -> Vec<Option<Vec<f32>>> {
    let Some((first, rest)) = net.layers.split_first() else {
        return vec![None; c.hops.len()];
    };
    let per_frame = first.inputs == c.dim;
    let mut firsts = Vec::new();
    if per_frame {
        first.forward(&c.frames, &mut firsts);
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    c.hops
        .iter()
        .map(|h| {
            let end = (*h)?;
            let start = end - c.embeddings;
            if per_frame {
                let o = first.outputs;
                x.clear();
                x.extend_from_slice(&firsts[start * o..end * o]);
                for layer in rest {
                    layer.forward(&x, &mut y);
                    std::mem::swap(&mut x, &mut y);
                }
                crate::kws::model::softmax_in_place(&mut x);
                Some(x.clone())
            } else {
                Some(net.predict(&c.frames[start * c.dim..end * c.dim]))
            }
        })
        .collect()
}

/// `c` with only the hops within `context` hops of one where a keyword scores at least
/// `floor` in `scores` (the shipped head's, one entry per hop) still running the model; the
/// others become `None` (fed to the detector as silence) and the frames only they read are
/// dropped. Why: most of a non-keyword stream is nowhere near a detection, and skipping it
/// makes the file and the adaptation's time several times smaller; the stream evaluation's
/// `--calibration` mode checks that owner models get the same threshold either way.
pub fn keep_near(
    c: &Calibration,
    scores: &[Option<Vec<f32>>],
    keywords: &[usize],
    floor: f32,
    context: usize,
) -> Calibration {
    let hot: Vec<bool> = scores
        .iter()
        .map(|s| {
            s.as_ref().is_some_and(|s| {
                keywords
                    .iter()
                    .any(|&k| s.get(k).is_some_and(|&v| v >= floor))
            })
        })
        .collect();
    let n = c.hops.len();
    let mut keep = vec![false; n];
    for (i, _) in hot.iter().enumerate().filter(|(_, h)| **h) {
        keep[i.saturating_sub(context)..(i + context + 1).min(n)]
            .iter_mut()
            .for_each(|k| *k = true);
    }
    // Old frame index -> new one, for every frame a kept window reads.
    let frames = c.frames.len() / c.dim.max(1);
    let mut needed = vec![false; frames];
    for (h, _) in c.hops.iter().zip(&keep).filter(|(_, k)| **k) {
        if let Some(end) = h {
            needed[end - c.embeddings..*end]
                .iter_mut()
                .for_each(|f| *f = true);
        }
    }
    let mut new_index = vec![usize::MAX; frames];
    let mut out_frames = Vec::new();
    for (i, _) in needed.iter().enumerate().filter(|(_, n)| **n) {
        new_index[i] = out_frames.len() / c.dim;
        out_frames.extend_from_slice(&c.frames[i * c.dim..(i + 1) * c.dim]);
    }
    let hops = c
        .hops
        .iter()
        .zip(&keep)
        .map(|(h, k)| match (h, k) {
            (Some(end), true) => Some(new_index[end - 1] + 1),
            _ => None,
        })
        .collect();
    Calibration {
        written_for: c.written_for.clone(),
        hop: c.hop,
        embeddings: c.embeddings,
        dim: c.dim,
        frames: out_frames,
        hops,
        counted: c.counted.clone(),
    }
}

/// How many detections the runtime's detector makes over `scores` (one entry per hop) at the
/// hops `counted` says count (`None`: every hop).
pub fn events(
    scores: &[Option<Vec<f32>>],
    counted: Option<&[bool]>,
    hop: Duration,
    cfg: &DetectorConfig,
    labels: &[String],
) -> Result<usize, String> {
    Ok(detection_hops(scores, counted, hop, cfg, labels)?.len())
}

/// The hops at which [`events`] counts a detection, with the keyword detected.
pub fn detection_hops(
    scores: &[Option<Vec<f32>>],
    counted: Option<&[bool]>,
    hop: Duration,
    cfg: &DetectorConfig,
    labels: &[String],
) -> Result<Vec<(usize, usize)>, String> {
    let mut d = Detector::new(cfg.clone(), labels).map_err(|e| e.to_string())?;
    fed_hops(
        scores.len(),
        counted,
        hop,
        cfg,
        |i, at| {
            match &scores[i] {
                Some(s) => d.push(at, s),
                None => d.push_silence(at),
            }
            .map_err(|e| e.to_string())
        },
        |i| scores[i].is_none(),
    )
}

/// How many detections an `either` owner model makes over the stream: the shipped head's
/// scores `shipped` through a detector at `cfg.threshold`, the adapted head's `adapted`
/// through one at `own_thresholds` (one per label), side by side as the runtime runs them
/// ([`crate::kws::either_detector`]).
pub fn either_events(
    adapted: &[Option<Vec<f32>>],
    shipped: &[Option<Vec<f32>>],
    own_thresholds: &[f32],
    counted: Option<&[bool]>,
    hop: Duration,
    cfg: &DetectorConfig,
    labels: &[String],
) -> Result<usize, String> {
    if adapted.len() != shipped.len() {
        return Err(format!(
            "the heads' scores cover {} and {} hops",
            adapted.len(),
            shipped.len()
        ));
    }
    let mut d =
        EitherDetector::new(cfg.clone(), own_thresholds, labels).map_err(|e| e.to_string())?;
    let quiet = |i: usize| adapted[i].is_none() || shipped[i].is_none();
    Ok(fed_hops(
        adapted.len(),
        counted,
        hop,
        cfg,
        |i, at| {
            match (&adapted[i], &shipped[i]) {
                (Some(a), Some(s)) => d.push(at, a, s),
                _ => d.push_silence(at),
            }
            .map_err(|e| e.to_string())
        },
        quiet,
    )?
    .len())
}

/// Feeds hops `0..n` to a detector through `push(hop, stream time)` and returns the hops at
/// which it reports (those `counted` says count), with the keyword. `quiet(hop)`: the hop
/// is silence.
fn fed_hops(
    n: usize,
    counted: Option<&[bool]>,
    hop: Duration,
    cfg: &DetectorConfig,
    mut push: impl FnMut(usize, Duration) -> Result<Option<Detection>, String>,
    quiet: impl Fn(usize) -> bool,
) -> Result<Vec<(usize, usize)>, String> {
    // Inside a long run of silent hops the detector's state stops changing once its average
    // window holds only silence; only the run's first and last `k` hops need feeding (the
    // last ones so the history is what it would be when speech resumes).
    let k = (cfg.average_window.as_nanos() / hop.as_nanos().max(1)) as usize + 2;
    let mut silent_before = vec![0usize; n];
    let mut silent_after = vec![0usize; n];
    for i in 0..n {
        if quiet(i) {
            silent_before[i] = 1 + if i > 0 { silent_before[i - 1] } else { 0 };
        }
    }
    for i in (0..n).rev() {
        if quiet(i) {
            silent_after[i] = 1 + silent_after.get(i + 1).copied().unwrap_or(0);
        }
    }
    let mut found_at = Vec::new();
    for i in 0..n {
        if silent_before[i] > k && silent_after[i] > k {
            continue;
        }
        let found = push(i, hop * (i as u32 + 1))?;
        let counts = counted.is_none_or(|c| c.get(i).copied().unwrap_or(true));
        if let (Some(d), true) = (found, counts) {
            found_at.push((i, d.index));
        }
    }
    Ok(found_at)
}

/// The thresholds an owner model may get, loosest first: the shipped threshold's distance to
/// 1 times 1.5 down to 0.2 (0.970 .. 0.996 for the shipped 0.98), each rounded to 4 decimals
/// (in f64, so the f32 written into the contract reads back as the short number it is, 0.988
/// and not 0.98800004); only those strictly between 0 and 1, each once.
pub fn candidates(shipped: f32) -> Vec<f32> {
    near_one(shipped, (0..=26).map(|k| 1.5 - 0.05 * f64::from(k)), 1e4)
}

/// `1 - (1 - shipped) * f` for each of `factors` (largest first), rounded to `1 / scale` in
/// f64, below 1 and above 0, each once, loosest first.
fn near_one(shipped: f32, factors: impl IntoIterator<Item = f64>, scale: f64) -> Vec<f32> {
    let distance = 1.0 - f64::from(shipped);
    let mut out: Vec<f32> = Vec::new();
    for f in factors {
        let t = 1.0 - distance * f;
        let t = (((t * scale).round() / scale) as f32).min(BELOW_ONE);
        if t > 0.0 && out.last().is_none_or(|&l| t > l) {
            out.push(t);
        }
    }
    out
}

/// What the calibration found.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    /// The owner model's threshold.
    pub threshold: f32,
    /// Detections of the shipped head at its own threshold over the stream.
    pub shipped_events: usize,
    /// Detections of the owner head at `threshold`.
    pub owner_events: usize,
    /// The stream's length.
    pub stream: Duration,
}

impl Matched {
    /// Whether the owner head got down to the shipped head's false accepts (it did not when
    /// even the strictest candidate accepts more).
    pub fn reached(&self) -> bool {
        self.owner_events <= self.shipped_events
    }
}

/// The loosest candidate threshold at which the owner head makes no more false accepts on
/// the stream `c` than the shipped head does at `detector.threshold`; the strictest
/// candidate if none does. `shipped` and `owner` are the heads' [`scores`] on `c`.
pub fn matched_threshold(
    c: &Calibration,
    shipped: &[Option<Vec<f32>>],
    owner: &[Option<Vec<f32>>],
    detector: &DetectorConfig,
    labels: &[String],
) -> Result<Matched, String> {
    let hop = c.hop;
    let counted = Some(c.counted.as_slice());
    let shipped_events = events(shipped, counted, hop, detector, labels)?;
    let mut last = None;
    for t in candidates(detector.threshold) {
        let cfg = DetectorConfig {
            threshold: t,
            ..detector.clone()
        };
        let n = events(owner, counted, hop, &cfg, labels)?;
        last = Some((t, n));
        if n <= shipped_events {
            break;
        }
    }
    let (threshold, owner_events) = last.ok_or_else(|| {
        format!(
            "no threshold between 0 and 1 to try around the shipped {}",
            detector.threshold
        )
    })?;
    Ok(Matched {
        threshold,
        shipped_events,
        owner_events,
        stream: hop * shipped.len() as u32,
    })
}

/// The thresholds a keyword of the adapted head of an `either` owner model may get, loosest
/// first: the shipped threshold's distance to 1 times 1.5 down to 1/200 (0.97 .. 0.9999 for
/// the shipped 0.98), rounded to 5 decimals. Why so wide: each keyword is matched on its
/// own ([`matched_either`]), and on the validation owners some ("yes", "left", "up") added
/// no false accept even looser than the shipped head's threshold, while others ("no",
/// "go", "right": "know", "goat", "write") needed 0.998-0.9999.
pub fn own_candidates(shipped: f32) -> Vec<f32> {
    near_one(
        shipped,
        [
            1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.025, 0.01, 0.005,
        ],
        1e5,
    )
}

/// What [`matched_either`] found: the detector threshold (the shipped head's), the adapted
/// head's threshold for each label (`silence` and `unknown` get the strictest, unused), and
/// the false accepts (`own.threshold`: the strictest keyword's threshold).
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedEither {
    pub detector: f32,
    pub own_thresholds: Vec<f32>,
    pub own: Matched,
}

/// For an `either` owner model (`kws::head::Either`, each head through a detector of its
/// own, [`either_events`]): the thresholds at which it makes no more false accepts on `c`
/// than the shipped head alone at `detector.threshold`. The shipped head's threshold is the
/// loosest of the shipped one and the [`candidates`] above it at which the adapted head, every
/// keyword at the strictest of [`own_candidates`], gets there; from there each keyword's own
/// threshold is loosened one candidate at a time, the keywords taking turns
/// ([`loosen_by_turns`]), while the pair still gets there. Why in that order: the shipped
/// head's threshold is what the other voices' words are heard at, and keeping it where it
/// was is the point of the rule; the adapted head is surest of the owner's words and loses
/// least by a strict threshold. Why word by word: one threshold for all is held to the
/// keyword the adapted head confuses most (on the validation owners, matching per word let
/// the adapted head hear 0-14 more of the owner's noisy keyword clips of 96-288, and the
/// other voices 5-13 more of their keywords, with no more false accepts on the stream or on
/// real speech, and 0-1 more of the other voices' other clips acted on; README "A threshold
/// per keyword"). `None` when no pair gets there.
/// `shipped` and `adapted` are the heads' [`scores`] on `c`.
pub fn matched_either(
    c: &Calibration,
    shipped: &[Option<Vec<f32>>],
    adapted: &[Option<Vec<f32>>],
    detector: &DetectorConfig,
    labels: &[String],
) -> Result<Option<MatchedEither>, String> {
    let hop = c.hop;
    let counted = Some(c.counted.as_slice());
    let shipped_events = events(shipped, counted, hop, detector, labels)?;
    let stream = hop * shipped.len() as u32;
    let own = own_candidates(detector.threshold);
    let keyword: Vec<bool> = labels.iter().map(|l| is_keyword(l)).collect();
    let thresholds = |steps: &[usize]| -> Vec<f32> { steps.iter().map(|&k| own[k]).collect() };
    // The shipped threshold itself first, wherever it lies on the candidates' grid.
    let above = candidates(detector.threshold)
        .into_iter()
        .filter(|&t| t > detector.threshold);
    for ts in std::iter::once(detector.threshold).chain(above) {
        let cfg = DetectorConfig {
            threshold: ts,
            ..detector.clone()
        };
        let count = |steps: &[usize]| -> Result<usize, String> {
            let n = either_events(
                adapted,
                shipped,
                &thresholds(steps),
                counted,
                hop,
                &cfg,
                labels,
            )?;
            log::debug!("either: shipped head {ts}, adapted head {steps:?}: {n} false accepts (shipped model {shipped_events})");
            Ok(n)
        };
        let strictest = vec![own.len() - 1; labels.len()];
        // The pair's false accepts at the steps kept last (each counted once).
        let mut owner_events = count(&strictest)?;
        if owner_events > shipped_events {
            continue;
        }
        let steps = loosen_by_turns(strictest, &keyword, |steps| {
            let n = count(steps)?;
            let fits = n <= shipped_events;
            if fits {
                owner_events = n;
            }
            Ok(fits)
        })?;
        let own_thresholds = thresholds(&steps);
        return Ok(Some(MatchedEither {
            detector: ts,
            own: Matched {
                threshold: crate::kws::head::strictest_keyword(&own_thresholds, &keyword),
                shipped_events,
                owner_events,
                stream,
            },
            own_thresholds,
        }));
    }
    Ok(None)
}

/// From `steps` (per label, an index into a candidate list, loosest at 0), takes one step
/// looser for each keyword in turn, keeping each step `fits` accepts; a keyword whose step
/// is refused stays where it is, and the turns end when every keyword has stopped. Greedy:
/// it assumes loosening the others never makes room for a refused keyword, which holds
/// nearly but not exactly (the pair's shared refractory time can let one word's detection
/// hide another's), so the result can depend on the labels' order. Why by turns: the first keyword would
/// otherwise take all the room the others could have had (false accepts left before the
/// shipped model's count is reached). At most one refused try per keyword, so the search
/// costs the steps kept plus the keywords.
fn loosen_by_turns(
    mut steps: Vec<usize>,
    keyword: &[bool],
    mut fits: impl FnMut(&[usize]) -> Result<bool, String>,
) -> Result<Vec<usize>, String> {
    let mut moving: Vec<usize> = (0..steps.len()).filter(|&w| keyword[w]).collect();
    while !moving.is_empty() {
        let mut still = Vec::with_capacity(moving.len());
        for w in moving {
            if steps[w] == 0 {
                continue;
            }
            steps[w] -= 1;
            if fits(&steps)? {
                still.push(w);
            } else {
                steps[w] += 1;
            }
        }
        moving = still;
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapt::net::Dense;

    fn labels() -> Vec<String> {
        ["silence", "unknown", "go"].map(String::from).to_vec()
    }

    fn shas() -> WrittenFor {
        WrittenFor {
            mel: "a".repeat(64),
            embedding: "b".repeat(64),
            head: "0123456789abcdef".repeat(4),
        }
    }

    #[test]
    fn a_stream_survives_the_file_and_quiet_hops_stay_quiet() {
        let c = Calibration {
            written_for: shas(),
            hop: Duration::from_micros(122_800),
            embeddings: 2,
            dim: 3,
            frames: vec![0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -2.0],
            hops: vec![None, Some(2), Some(3), None],
            counted: vec![true, false, true, true],
        };
        let back = parse(&write(&c), 2, 3).unwrap();
        assert_eq!(back.written_for, c.written_for);
        assert_eq!(back.hop, c.hop);
        assert_eq!(back.hops, c.hops);
        assert_eq!(back.counted, c.counted);
        for (a, b) in back.frames.iter().zip(&c.frames) {
            assert!((a - b).abs() <= 2.0 / 127.0, "{a} vs {b}");
        }
        // A head of another shape, a truncated file and a window past the end are refused.
        assert!(parse(&write(&c), 16, 96).unwrap_err().contains("16 x 96"));
        let bytes = write(&c);
        assert!(parse(&bytes[..bytes.len() - 1], 2, 3).is_err());
        let mut bad = c.clone();
        bad.hops[1] = Some(4);
        assert!(parse(&write(&bad), 2, 3).unwrap_err().contains("outside"));
        assert!(parse(b"CBREPLAY\0\0\0\0", 2, 3)
            .unwrap_err()
            .contains("magic"));
        assert!(parse(&bytes[..100], 2, 3).unwrap_err().contains("header"));
        let mut flag = bytes.clone();
        *flag.last_mut().unwrap() = 2;
        assert!(parse(&flag, 2, 3).unwrap_err().contains("flag 2"));
        let mut huge = bytes.clone();
        huge[HEADER - 8..HEADER - 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&huge, 2, 3).unwrap_err().contains("announces"));
        let mut unnamed = bytes.clone();
        unnamed[8] = b'z';
        assert!(parse(&unnamed, 2, 3).unwrap_err().contains("written with"));
    }

    #[test]
    fn the_shared_first_layer_gives_the_same_scores_as_the_whole_head() {
        let mut rng = crate::adapt::trainer::SplitMix64::new(3);
        let net = Net {
            layers: vec![
                Dense::random(&mut rng, 3, 4, true, 0.1),
                Dense::random(&mut rng, 8, 5, true, 0.1),
                Dense::random(&mut rng, 5, 3, false, 0.1),
            ],
        };
        let c = Calibration {
            written_for: shas(),
            hop: Duration::from_millis(125),
            embeddings: 2,
            dim: 3,
            frames: (0..15).map(|_| rng.normal()).collect(),
            hops: vec![Some(2), None, Some(3), Some(5)],
            counted: vec![true; 4],
        };
        let s = scores(&net, &c);
        assert!(s[1].is_none());
        for (h, got) in c.hops.iter().zip(&s) {
            if let (Some(end), Some(got)) = (h, got) {
                let want = net.predict(&c.frames[(end - 2) * 3..end * 3]);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-6, "{got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn keeping_the_hops_near_a_keyword_keeps_their_windows_exactly() {
        let dim = 2;
        let frames: Vec<f32> = (0..20).map(|v| v as f32).collect(); // 10 frames
        let c = Calibration {
            written_for: shas(),
            hop: Duration::from_millis(80),
            embeddings: 3,
            dim,
            frames,
            hops: (3..=10).map(Some).collect(), // 8 hops, windows [0..3) .. [7..10)
            counted: vec![true; 8],
        };
        let low = Some(vec![1.0, 0.0, 0.1]);
        let high = Some(vec![0.0, 0.2, 0.8]);
        let mut scores = vec![low.clone(); 8];
        scores[5] = high;
        let kept = keep_near(&c, &scores, &[2], 0.5, 1);
        // Hops 4, 5 and 6 keep running: windows [4..7), [5..8) and [6..9), which read
        // frames 4 to 8 (5 of the 10).
        assert_eq!(kept.frames.len(), 5 * dim);
        let window = |c: &Calibration, h: usize| {
            let end = c.hops[h].unwrap();
            c.frames[(end - 3) * dim..end * dim].to_vec()
        };
        for h in 4..=6 {
            assert_eq!(window(&kept, h), window(&c, h), "hop {h}");
        }
        for h in [0, 1, 2, 3, 7] {
            assert_eq!(kept.hops[h], None, "hop {h}");
        }
        // It survives the file.
        assert_eq!(parse(&write(&kept), 3, dim).unwrap().hops, kept.hops);
        assert_eq!(kept.counted, c.counted);
    }

    /// Two results of `p` for "go" every 1.25 s, apart enough to be separate events.
    fn bursts(p: &[f32]) -> Vec<Option<Vec<f32>>> {
        p.iter()
            .flat_map(|&p| {
                let s = Some(vec![0.0, 1.0 - p, p]);
                [s.clone(), s, None, None, None, None, None, None, None, None]
            })
            .collect()
    }

    /// A stream of `n` hops of 125 ms whose detections all count but those at `uncounted`.
    fn stream(n: usize, uncounted: &[usize]) -> Calibration {
        Calibration {
            written_for: shas(),
            hop: Duration::from_millis(125),
            embeddings: 1,
            dim: 1,
            frames: Vec::new(),
            hops: vec![None; n],
            counted: (0..n).map(|i| !uncounted.contains(&i)).collect(),
        }
    }

    #[test]
    fn the_owner_gets_the_loosest_threshold_that_accepts_no_more_than_the_shipped_head() {
        let det = DetectorConfig {
            average_window: Duration::from_millis(250),
            threshold: 0.98,
            refractory: Duration::from_secs(1),
            min_results: 2,
        };
        let c = stream(40, &[]);
        // The shipped head accepts 2 of these; the owner head is surer of all of them.
        let shipped = bursts(&[0.95, 0.981, 0.985, 0.5]);
        let owner = bursts(&[0.9935, 0.991, 0.9875, 0.6]);
        let m = matched_threshold(&c, &shipped, &owner, &det, &labels()).unwrap();
        assert_eq!(m.shipped_events, 2);
        assert_eq!(m.owner_events, 2);
        // 0.987 still accepts 3 of them, 0.988 two.
        assert!((m.threshold - 0.988).abs() < 1e-6, "{}", m.threshold);
        // An owner head less sure than the shipped one may go below the shipped threshold.
        let unsure = bursts(&[0.9, 0.975, 0.976, 0.5]);
        let m = matched_threshold(&c, &shipped, &unsure, &det, &labels()).unwrap();
        assert!((m.threshold - 0.97).abs() < 1e-6, "{}", m.threshold);
        // One that accepts everything at every candidate gets the strictest.
        let sure = bursts(&[0.9999, 0.9999, 0.9999, 0.9999]);
        let m = matched_threshold(&c, &shipped, &sure, &det, &labels()).unwrap();
        assert_eq!(m.owner_events, 4);
        assert!(!m.reached());
        assert!((m.threshold - 0.996).abs() < 1e-6, "{}", m.threshold);
        // A detection blamed on a keyword-like word (the third burst's, at hop 21) counts
        // for neither head: the shipped head makes 1 false accept, so the owner head must
        // also give up its 0.991 burst: 0.992.
        let c = stream(40, &[21]);
        let m = matched_threshold(&c, &shipped, &owner, &det, &labels()).unwrap();
        assert_eq!((m.shipped_events, m.owner_events), (1, 1));
        assert!((m.threshold - 0.992).abs() < 1e-6, "{}", m.threshold);
    }

    #[test]
    fn either_keeps_the_shipped_threshold_when_a_strict_enough_adapted_one_is_found() {
        let det = DetectorConfig {
            average_window: Duration::from_millis(250),
            threshold: 0.98,
            refractory: Duration::from_secs(1),
            min_results: 2,
        };
        let c = stream(40, &[]);
        // The shipped head accepts 2 of these (the second and third bursts).
        let shipped = bursts(&[0.95, 0.981, 0.985, 0.5]);
        // The adapted head is sure of the second burst (already accepted) and less sure of
        // the first: at 0.998 or looser it adds that one, at 0.999 it does not.
        let adapted = bursts(&[0.9985, 0.9999, 0.5, 0.5]);
        let m = matched_either(&c, &shipped, &adapted, &det, &labels())
            .unwrap()
            .unwrap();
        assert_eq!(m.detector, 0.98, "the shipped head keeps its threshold");
        assert!(
            (m.own.threshold - 0.999).abs() < 1e-6,
            "{}",
            m.own.threshold
        );
        assert_eq!((m.own.owner_events, m.own.shipped_events), (2, 2));
        // Sure of a fourth, new burst at every candidate: the shipped head's threshold rises
        // until it drops one of its own (0.982 drops the 0.981 burst).
        let adapted = bursts(&[0.5, 0.5, 0.5, 0.99995]);
        let m = matched_either(&c, &shipped, &adapted, &det, &labels())
            .unwrap()
            .unwrap();
        assert!((m.detector - 0.982).abs() < 1e-6, "{}", m.detector);
        assert!((m.own.threshold - 0.97).abs() < 1e-6, "{}", m.own.threshold);
        // Sure of everything, and the shipped head's candidates run out: no pair.
        let adapted = bursts(&[0.99999, 0.99999, 0.99999, 0.99999]);
        let none = matched_either(&c, &shipped, &adapted, &det, &labels()).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn either_hears_each_head_through_a_detector_of_its_own() {
        let det = DetectorConfig {
            average_window: Duration::from_millis(250),
            threshold: 0.98,
            refractory: Duration::from_secs(1),
            min_results: 2,
        };
        // Bursts of "go" results (probabilities) with 8 quiet hops after each.
        let burst = |ps: &[&[f32]]| -> Vec<Option<Vec<f32>>> {
            ps.iter()
                .flat_map(|b| {
                    let mut v: Vec<Option<Vec<f32>>> =
                        b.iter().map(|&p| Some(vec![0.0, 1.0 - p, p])).collect();
                    v.extend(std::iter::repeat_n(None, 8));
                    v
                })
                .collect()
        };
        // The shipped head: near misses taking turns (two-result averages of 0.97), then one
        // word it hears. The adapted head: sure where the shipped head is not, unsure where
        // it is, never sure on average.
        let shipped = burst(&[&[0.99, 0.95, 0.99, 0.95], &[0.985, 0.985]]);
        let adapted = burst(&[&[0.9, 0.99995, 0.9, 0.99995], &[0.5, 0.5]]);
        let c = stream(shipped.len(), &[]);
        let m = matched_either(&c, &shipped, &adapted, &det, &labels())
            .unwrap()
            .unwrap();
        assert_eq!(m.detector, 0.98, "the shipped head keeps its threshold");
        assert_eq!(m.own.threshold, 0.97, "the loosest adapted-head threshold");
        assert_eq!((m.own.owner_events, m.own.shipped_events), (1, 1));
        // One detector over the joined scores would hear the first burst too, at every
        // adapted-head threshold tried: the artifact side by side avoids.
        for t in own_candidates(0.98) {
            let e = crate::kws::head::Either::uniform(vec![false, false, true], t, 0.98);
            let one = joined(&adapted, &shipped, |o, s| e.join_into(o, s));
            assert_eq!(
                events(&one, None, c.hop, &det, &labels()).unwrap(),
                2,
                "{t}"
            );
        }
        // Mismatched lengths are refused, not cut short.
        assert!(either_events(
            &adapted[1..],
            &shipped,
            &[0.99; 3],
            None,
            c.hop,
            &det,
            &labels()
        )
        .is_err());
    }

    #[test]
    fn own_candidates_run_from_one_and_a_half_to_a_two_hundredth_of_the_distance_to_one() {
        assert_eq!(
            own_candidates(0.98),
            vec![0.97, 0.975, 0.98, 0.985, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999]
        );
    }

    #[test]
    fn each_keyword_of_the_adapted_head_gets_its_own_threshold() {
        let det = DetectorConfig {
            average_window: Duration::from_millis(250),
            threshold: 0.98,
            refractory: Duration::from_secs(1),
            min_results: 2,
        };
        let labels: Vec<String> = ["silence", "unknown", "go", "no"]
            .map(String::from)
            .to_vec();
        // Bursts of two results, (go, no) probabilities, 8 quiet hops after each.
        let burst = |ps: &[(f32, f32)]| -> Vec<Option<Vec<f32>>> {
            ps.iter()
                .flat_map(|&(g, n)| {
                    let s = Some(vec![0.0, 1.0 - g - n, g, n]);
                    let mut v = vec![s.clone(), s];
                    v.extend(std::iter::repeat_n(None, 8));
                    v
                })
                .collect()
        };
        // The shipped head hears "go" once. The adapted head is sure of that "go" too, and
        // less sure of a "no" the shipped head does not hear: at 0.998 or looser "no" adds a
        // false accept, "go" adds none at any threshold.
        let shipped = burst(&[(0.985, 0.0), (0.0, 0.5), (0.5, 0.0)]);
        let adapted = burst(&[(0.9999, 0.0), (0.0, 0.9985), (0.5, 0.0)]);
        let c = stream(shipped.len(), &[]);
        let m = matched_either(&c, &shipped, &adapted, &det, &labels)
            .unwrap()
            .unwrap();
        assert_eq!(m.detector, 0.98);
        assert_eq!(m.own_thresholds[2..], [0.97, 0.999], "go, no");
        assert_eq!(m.own.threshold, 0.999, "the strictest keyword's");
        assert_eq!((m.own.owner_events, m.own.shipped_events), (1, 1));
    }

    #[test]
    fn keywords_loosen_by_turns_and_stop_at_their_first_refusal() {
        // Two keywords (labels 1 and 2), from step 5; each step below 4 costs one false
        // accept, and two are allowed. By turns each gets one step below 4; had the first
        // keyword gone as far as it could first, it would have taken both.
        let keyword = [false, true, true];
        let cost = |s: &[usize]| {
            s.iter()
                .skip(1)
                .map(|&k| 4usize.saturating_sub(k))
                .sum::<usize>()
        };
        let mut tries = 0;
        let steps = loosen_by_turns(vec![5, 5, 5], &keyword, |s| {
            tries += 1;
            Ok(cost(s) <= 2)
        })
        .unwrap();
        assert_eq!(
            steps,
            [5, 3, 3],
            "silence untouched, each keyword one step below 4"
        );
        // Steps kept (4) plus one refusal per keyword.
        assert_eq!(tries, 6);
        // A keyword that costs nothing goes to the loosest candidate and no further.
        let steps = loosen_by_turns(vec![5, 5, 5], &keyword, |s| Ok(s[1] >= 2)).unwrap();
        assert_eq!(steps, [5, 2, 0]);
        // An error stops the search.
        assert!(loosen_by_turns(vec![5, 5, 5], &keyword, |_| Err("x".into())).is_err());
    }

    #[test]
    fn skipping_the_middle_of_silent_runs_changes_no_detection() {
        let mut rng = crate::adapt::trainer::SplitMix64::new(5);
        let labels = labels();
        // Bursts of random scores between silent runs of random length.
        let mut scores = Vec::new();
        for _ in 0..300 {
            for _ in 0..rng.below(12) {
                let go = 0.9 + 0.1 * rng.uniform();
                scores.push(Some(vec![0.0, 1.0 - go, go]));
            }
            scores.extend(std::iter::repeat_n(None, rng.below(30)));
        }
        let hop = Duration::from_millis(80);
        for average in [160, 250, 750] {
            let cfg = DetectorConfig {
                average_window: Duration::from_millis(average),
                threshold: 0.95,
                refractory: Duration::from_secs(1),
                min_results: 2,
            };
            let mut d = Detector::new(cfg.clone(), &labels).unwrap();
            let every = scores
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    let at = hop * (*i as u32 + 1);
                    match s {
                        Some(s) => d.push(at, s),
                        None => d.push_silence(at),
                    }
                    .unwrap()
                    .is_some()
                })
                .count();
            assert!(every > 10, "{every}");
            assert_eq!(events(&scores, None, hop, &cfg, &labels).unwrap(), every);
        }
    }

    #[test]
    fn candidates_run_from_loose_to_strict_and_stay_below_one() {
        let c = candidates(0.98);
        assert!((c[0] - 0.97).abs() < 1e-6 && (c[26] - 0.996).abs() < 1e-6);
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(c[18].to_string(), "0.988");
        // Never 0 or 1, never twice the same.
        for shipped in [0.999_999, 0.2, 0.5, 1e-6] {
            let c = candidates(shipped);
            assert!(!c.is_empty(), "{shipped}");
            assert!(c.iter().all(|&t| t > 0.0 && t < 1.0), "{shipped}: {c:?}");
            assert!(c.windows(2).all(|w| w[0] < w[1]), "{shipped}: {c:?}");
        }
    }
}
