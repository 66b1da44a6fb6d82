//! `chatterbox adapt`: teach the keyword head one owner's voice, on the toy, in seconds (about
//! 2.3 on one core of a slow PC; under half a minute, by projection, on a Pi Zero 2 W).
//!
//! The embedding front end's head is small (a few Dense layers over 96-value embeddings), so
//! adapting it is a little arithmetic: the owner's takes go through the runtime's own front end,
//! the head is trained in Rust on them mixed with a shipped replay set (so it does not forget
//! other voices, unknown words and noise) — the owner's keywords, and the words that are not
//! commands the owner said as `unknown` (so it does not start hearing keywords in the rest of
//! that voice's speech) — and the result is written as the shipped
//! `head.tflite` with its weight bytes patched, so LiteRT runs it exactly as before.
//!
//! The owner model keeps the shipped head beside the adapted one, each heard at its own
//! threshold (`[combine] rule = "either"`), unless that gets fewer held-out takes right than
//! the adapted head alone ([`plan`]): other voices then keep what the shipped head heard.
//!
//! The adapted model lives in `<state_dir>/models-owner/` with its own pinned `kws.toml`, and is
//! only switched to when it beats the shipped head (and the owner model in use, if any) on the
//! owner's held-out takes. `undo` puts
//! back what was there before.
//!
//! This module is the public API (the on-toy enrollment path calls [`adapt`] from a worker
//! thread); the work is in its submodules.

use std::path::{Path, PathBuf};

use crate::kws::meta::KwsMeta;

/// What to adapt to and where to put the result.
#[derive(Clone, Debug)]
pub struct AdaptRequest {
    /// The owner's takes, `DIR/<word>/*.wav` with `DIR/testing_list.txt` (as `enroll` writes).
    pub takes_dir: PathBuf,
    /// The toy's state directory; the adapted model goes to `<state_dir>/models-owner/`.
    pub state_dir: PathBuf,
    /// The shipped embedding model's contract (`models/embedding/kws.toml`).
    pub shipped_meta: PathBuf,
    /// Seed of the trainer: the same takes and seed give the same model, byte for byte.
    pub seed: u64,
}

/// What one adaptation did.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptReport {
    /// Accuracy of the shipped head on the owner's held-out takes (0..=1).
    pub before: f32,
    /// Accuracy of the adapted model on the same takes, as it will run: with the shipped head
    /// beside it as [`Self::join`] says, else alone.
    pub after: f32,
    /// Accuracy of the adapted head alone and beside the shipped head, when both were tried
    /// ([`trainer::TrainConfig::max_with_shipped`], [`plan`]); `after` is one of them.
    pub tried: Option<Tried>,
    /// With the `either` rule, the adapted head's threshold for each keyword written into
    /// `[combine]` (the detector's `threshold` is then the shipped one).
    pub own_thresholds: Option<Vec<(String, f32)>>,
    /// Accuracy of the owner model that was in use (an earlier adaptation), if there was a
    /// whole one over the same front end: the new head must beat it too.
    pub in_use: Option<f32>,
    /// True if the adapted model is now the owner model (it was better).
    pub switched: bool,
    /// Held-out takes measured.
    pub held_out: usize,
    /// The detector threshold written into the adapted model's contract (`None`: it was not
    /// switched to, so none was set).
    pub threshold: Option<f32>,
    /// How `threshold` was matched on the shipped calibration stream, or with the `either`
    /// rule the adapted head's thresholds (`Matched::threshold`: the strictest keyword's;
    /// `None`: the model folder has none, and the fixed
    /// [`owner::owner_threshold`] was used, or no threshold was set).
    pub calibration: Option<calibrate::Matched>,
    /// Wall time of the whole adaptation.
    pub seconds: f32,
}

/// What `undo` put back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The previous owner model is in use again.
    RestoredPrevious,
    /// There was no previous owner model: the shipped model is in use again.
    BackToShipped,
    /// There was no owner model to undo.
    NothingToUndo,
}

/// Everything that can stop an adaptation; each message names the thing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("no takes in {dir}: record them first with `chatterbox enroll --dir {dir}`")]
    NoTakes { dir: PathBuf },
    #[error("the takes in {dir} are of {folders}, which the model does not know; it knows: {known}. Rename the folder to the word it holds, or record the takes again with `chatterbox enroll --dir {dir}`")]
    UnknownWords {
        dir: PathBuf,
        folders: String,
        known: String,
    },
    #[error("too few takes of '{word}' in {dir}: {have} for training and {held_out} held out; record at least {need} takes of each word (`chatterbox enroll --takes 6`)")]
    TooFewTakes {
        dir: PathBuf,
        word: String,
        have: usize,
        held_out: usize,
        need: usize,
    },
    #[error("cannot read take {path}: {reason}")]
    Take { path: PathBuf, reason: String },
    #[error("the shipped model cannot be adapted: {0}")]
    Shipped(String),
    #[error("the replay set {path} is missing or damaged ({reason}); reinstall the model folder or rerun `python -m kws.adapt_pack <folder>` (scripts/)")]
    Replay { path: PathBuf, reason: String },
    #[error("the calibration stream {path} cannot be used ({reason}); reinstall the model folder, or, after retraining the head, rewrite it with `KWS_EVAL_META=<folder>/kws.toml cargo bench --bench kws_stream_eval -- --calibration {path}` and pin it with `python -m kws.adapt_pack <folder> --table-only` (from scripts/)")]
    Calibration { path: PathBuf, reason: String },
    #[error("keyword model: {0}")]
    Model(String),
    #[error("cannot write the owner model in {dir}: {source}; free some space (df -h) or check the folder's permissions")]
    Write {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another `chatterbox adapt` (or the toy learning a voice) is changing the owner model in {dir}; try again when it has finished")]
    Busy { dir: PathBuf },
    #[error("the adapted model failed its self-check: {0}")]
    SelfCheck(String),
    #[error("learning was stopped before it switched models (the toy stopped waiting for it); the owner model was not changed. `chatterbox adapt` learns from the saved takes")]
    Stopped,
}

/// Adapts the shipped head to the owner's takes; switches to it only when it is better on the
/// held-out takes.
pub fn adapt(req: &AdaptRequest) -> Result<AdaptReport, AdaptError> {
    adapt_with(req, &trainer::TrainConfig::default())
}

/// [`adapt`] with another training configuration (the trial and the bench compare variants).
pub fn adapt_with(
    req: &AdaptRequest,
    cfg: &trainer::TrainConfig,
) -> Result<AdaptReport, AdaptError> {
    adapt_unless(req, cfg, &|_| true)
}

/// Where [`adapt_unless`] asks whether to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before the front end, after it, every [`trainer::STEPS_PER_CHECK`] training steps,
    /// after training, and after matching the detector threshold.
    Working,
    /// The staged model passed its self-check and is about to be switched to: a `true` here
    /// is final (the toy's [`StopFlag::claim_switch`](crate::runtime::adapter_glue::StopFlag)).
    Switching,
}

/// [`adapt_with`] that gives up with [`AdaptError::Stopped`], the owner model untouched, when
/// `go_on` says no: asked between the steps and last just before the switch. Why: the toy
/// shows "Not learned" when it stops waiting, and a model switched after that would
/// contradict its own screen.
pub fn adapt_unless(
    req: &AdaptRequest,
    cfg: &trainer::TrainConfig,
    go_on: &dyn Fn(Stage) -> bool,
) -> Result<AdaptReport, AdaptError> {
    let t0 = std::time::Instant::now();
    let ask = go_on;
    let go_on = |stage| {
        if ask(stage) {
            Ok(())
        } else {
            Err(AdaptError::Stopped)
        }
    };
    go_on(Stage::Working)?;
    let Prepared {
        shipped,
        held,
        train,
    } = prepare(req, cfg.noisy_copies, cfg.reversed_takes)?;
    log::debug!(
        "adapt: model loaded and the takes through the front end by {:.2} s",
        t0.elapsed().as_secs_f32()
    );
    go_on(Stage::Working)?;
    let before = trainer::accuracy(&shipped.net, &held);
    let in_use = in_use_accuracy(&req.state_dir, &shipped.meta, &held);
    let unknown = shipped
        .meta
        .labels
        .iter()
        .position(|l| l == crate::kws::meta::UNKNOWN);
    let train = trainer::weigh_unknown(&train, unknown, cfg.other_word_repeats);
    let adapted = trainer::train_unless(
        &shipped.net,
        &train,
        &shipped.replay,
        cfg,
        req.seed,
        &|| ask(Stage::Working),
    )
    .ok_or(AdaptError::Stopped)?;
    log::debug!("adapt: trained by {:.2} s", t0.elapsed().as_secs_f32());
    go_on(Stage::Working)?;
    let plan = plan(&shipped, &adapted, &held, cfg)?;
    log::debug!("adapt: planned by {:.2} s", t0.elapsed().as_secs_f32());
    let owner_head = plan.head(&shipped.net, &adapted);
    let after = plan.accuracy;
    // Better than the shipped head, and than the owner model in use: a new adaptation must
    // not replace a better one from an earlier session or seed.
    let switched = after > in_use.map_or(before, |u| u.max(before));
    let (mut threshold, mut calibration) = (None, None);
    if switched {
        let (t, m) = match &plan.join {
            Join::Either { matched, .. } => (matched.detector, Some(matched.own.clone())),
            _ => owner_detector_threshold(&shipped, owner_head)?,
        };
        (threshold, calibration) = (Some(t), m);
        go_on(Stage::Working)?;
        install(req, &shipped, owner_head, t, &go_on)?;
        log::debug!(
            "adapt: checked and installed by {:.2} s",
            t0.elapsed().as_secs_f32()
        );
    }
    Ok(AdaptReport {
        before,
        after,
        in_use,
        switched,
        tried: plan.tried,
        own_thresholds: match &plan.join {
            Join::Either { either, .. } if switched => Some(
                shipped
                    .meta
                    .labels
                    .iter()
                    .zip(&either.own_thresholds)
                    .filter(|(l, _)| crate::kws::meta::is_keyword(l))
                    .map(|(l, &t)| (l.clone(), t))
                    .collect(),
            ),
            _ => None,
        },
        held_out: held.len(),
        threshold,
        calibration,
        seconds: t0.elapsed().as_secs_f32(),
    })
}

/// How the owner model joins the adapted head with the shipped one ([`plan`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Join {
    /// The adapted head alone.
    Alone,
    /// `[combine] rule = "max"`: class by class the larger probability, one threshold.
    Max,
    /// `[combine] rule = "either"`: the shipped head at the detector threshold, the adapted
    /// one at its own, both matched on the calibration stream.
    Either {
        either: crate::kws::head::Either,
        matched: calibrate::MatchedEither,
    },
}

/// What the owner model will be, and what that was decided on.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub join: Join,
    /// Its accuracy on the held-out takes.
    pub accuracy: f32,
    /// What each way of joining got on them (`None`: only the head alone was tried).
    pub tried: Option<Tried>,
}

impl Plan {
    /// The owner model as the Rust heads compute it.
    pub fn head<'a>(&'a self, shipped: &'a net::Net, adapted: &'a net::Net) -> net::OwnerHead<'a> {
        net::OwnerHead {
            adapted,
            beside: match &self.join {
                Join::Alone => None,
                Join::Max => Some(net::Beside::Max(shipped)),
                Join::Either { either, .. } => Some(net::Beside::Either(shipped, either)),
            },
        }
    }
}

/// Chooses what the owner model will be, on the held-out takes ([`Tried::join`] is the rule):
/// the adapted head with the shipped head beside it by the `either` rule when the model
/// folder has a calibration stream, the adapted head's own thresholds (one per keyword) can be matched on it
/// (the pair then accepts no more there than the shipped head does) and the held-out takes
/// lose nothing by it; else beside it by the `max` rule when they lose nothing by that; else
/// alone.
///
/// Why `either` first: the shipped head keeps its own threshold, or nearly (it rises only
/// as far as the adapted head's surest false accepts need), so what it heard in any voice is
/// still heard; with `max` one threshold must rise for both heads, and other voices lost 1-2
/// points in the toy's streams (README "Teach it your voice"). Why not always: a word the shipped head hears
/// wrongly and surely in the owner's voice stays wrong beside it, and the owner's takes are
/// what say so.
pub fn plan(
    shipped: &Shipped,
    adapted: &net::Net,
    held: &[trainer::Example],
    cfg: &trainer::TrainConfig,
) -> Result<Plan, AdaptError> {
    let (pair, acc, max_tried) = beside_or_alone(&shipped.net, adapted, held, cfg);
    let fallback = |tried: Option<Tried>| Plan {
        join: if pair.beside.is_some() {
            Join::Max
        } else {
            Join::Alone
        },
        accuracy: acc,
        tried,
    };
    let (Some(max_tried), Some(c)) = (max_tried, &shipped.calibration) else {
        return Ok(fallback(max_tried));
    };
    let detector = toy_detector(&shipped.meta);
    let labels = &shipped.meta.labels;
    let calibrating =
        |e: String| AdaptError::Model(format!("calibrating the detector threshold: {e}"));
    let shipped_scores = calibrate::scores(&shipped.net, c);
    let adapted_scores = calibrate::scores(adapted, c);
    let found = calibrate::matched_either(c, &shipped_scores, &adapted_scores, &detector, labels)
        .map_err(calibrating)?;
    let either = found.as_ref().map(|m| crate::kws::head::Either {
        keyword: labels
            .iter()
            .map(|l| crate::kws::meta::is_keyword(l))
            .collect(),
        own_thresholds: m.own_thresholds.clone(),
        threshold: m.detector,
    });
    let tried = Tried {
        either: either.as_ref().map(|e| {
            let head = net::OwnerHead {
                adapted,
                beside: Some(net::Beside::Either(&shipped.net, e)),
            };
            trainer::accuracy_of(|x| head.predict(x), held)
        }),
        ..max_tried
    };
    let mut plan = fallback(Some(tried));
    match tried.join() {
        TriedJoin::Either => {
            if let (Some(either), Some(matched), Some(acc)) = (either, found, tried.either) {
                plan.accuracy = acc;
                plan.join = Join::Either { either, matched };
            }
        }
        TriedJoin::Max => plan.accuracy = tried.beside,
        TriedJoin::Alone => {
            plan.accuracy = tried.alone;
            plan.join = Join::Alone;
        }
    }
    Ok(plan)
}

/// The adapted head with the shipped head beside it by the `max` rule (class by class the
/// larger probability, `kws::head`) when `cfg` allows it and that gets at least as many of
/// the held-out takes right as the adapted head alone; else the adapted head alone.
/// Returns it, its accuracy on `held`, and both accuracies when the pair was tried.
pub fn beside_or_alone<'a>(
    shipped: &'a net::Net,
    adapted: &'a net::Net,
    held: &[trainer::Example],
    cfg: &trainer::TrainConfig,
) -> (net::OwnerHead<'a>, f32, Option<Tried>) {
    let alone = net::OwnerHead::alone(adapted);
    let alone_acc = trainer::accuracy(adapted, held);
    if !cfg.max_with_shipped {
        return (alone, alone_acc, None);
    }
    let pair = net::OwnerHead {
        adapted,
        beside: Some(net::Beside::Max(shipped)),
    };
    let tried = Tried {
        alone: alone_acc,
        beside: trainer::accuracy_of(|x| pair.predict(x), held),
        either: None,
    };
    if tried.keeps_pair() {
        (pair, tried.beside, Some(tried))
    } else {
        (alone, tried.alone, Some(tried))
    }
}

/// Held-out accuracy of the adapted head alone and beside the shipped head ([`plan`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tried {
    pub alone: f32,
    /// Beside the shipped head, `max` rule.
    pub beside: f32,
    /// Beside the shipped head, `either` rule (`None`: not tried, or its threshold could not
    /// be matched).
    pub either: Option<f32>,
}

/// Which join [`Tried::join`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriedJoin {
    Alone,
    Max,
    Either,
}

impl Tried {
    /// The `max` pair when the held-out takes lose nothing by it against the head alone.
    pub fn keeps_pair(&self) -> bool {
        self.beside >= self.alone
    }

    /// The rule: `either` when the held-out takes lose nothing by it against the head alone,
    /// else `max` when they lose nothing by that, else the head alone.
    pub fn join(&self) -> TriedJoin {
        if self.either.is_some_and(|e| e >= self.alone) {
            TriedJoin::Either
        } else if self.keeps_pair() {
            TriedJoin::Max
        } else {
            TriedJoin::Alone
        }
    }
}

impl AdaptReport {
    /// How the adapted model (switched to or not) joins the shipped head's answers with its
    /// own (`[combine]`, `kws::head`), from what was tried.
    pub fn join(&self) -> TriedJoin {
        self.tried.map_or(TriedJoin::Alone, |t| t.join())
    }
}

/// The adapted head's detector threshold (with the `max` rule or alone): matched on the
/// shipped calibration stream when the model folder has one (see [`calibrate`]), else the
/// fixed [`owner::owner_threshold`].
pub fn owner_detector_threshold(
    shipped: &Shipped,
    owner: net::OwnerHead<'_>,
) -> Result<(f32, Option<calibrate::Matched>), AdaptError> {
    let Some(c) = &shipped.calibration else {
        return Ok((
            owner::owner_threshold(shipped.meta.detector.threshold),
            None,
        ));
    };
    let detector = toy_detector(&shipped.meta);
    let labels = &shipped.meta.labels;
    let shipped_scores = calibrate::scores(&shipped.net, c);
    let owner_scores = calibrate::owner_scores(owner, c, &shipped.net, &shipped_scores);
    let m = calibrate::matched_threshold(c, &shipped_scores, &owner_scores, &detector, labels)
        .map_err(|e| AdaptError::Model(format!("calibrating the detector threshold: {e}")))?;
    Ok((m.threshold, Some(m)))
}

/// The detector the toy runs with `meta` by default: the configuration's defaults (not the
/// owner's `keywords.average_ms` and the like, which the calibration does not see) at the
/// model's own threshold (`keywords.threshold = "model"`).
pub fn toy_detector(meta: &KwsMeta) -> crate::kws::detector::DetectorConfig {
    crate::kws::detector::DetectorConfig {
        threshold: crate::config::KeywordConfig::default()
            .threshold
            .resolve(meta.detector.threshold),
        ..crate::kws::listener::RecognizerConfig::default().detector
    }
}

/// Everything adaptation trains and measures on.
pub struct Prepared {
    pub shipped: Shipped,
    /// The held-out takes, placed as `chatterbox evaluate` places them.
    pub held: Vec<trainer::Example>,
    /// The training takes at every window position.
    pub train: Vec<trainer::Example>,
}

/// Loads the shipped model and turns the takes into examples (the slow part: the front end).
pub fn prepare(
    req: &AdaptRequest,
    noisy_copies: usize,
    reversed: bool,
) -> Result<Prepared, AdaptError> {
    let shipped = Shipped::load(&req.shipped_meta)?;
    let takes = takes::find(&req.takes_dir, &shipped.meta)?;
    let held = takes::held_out_examples(&shipped.meta, &takes)?;
    let train = takes::training_examples(&shipped.meta, &takes, noisy_copies, reversed, req.seed)?;
    Ok(Prepared {
        shipped,
        held,
        train,
    })
}

/// Accuracy on `held` of the owner model in use, run by LiteRT from its own contract; `None`
/// when there is none, it is damaged, or it is over another front end or other classes than
/// `shipped` (then `held`, computed with the shipped front end, is not its input).
fn in_use_accuracy(state_dir: &Path, shipped: &KwsMeta, held: &[trainer::Example]) -> Option<f32> {
    use crate::kws::model::Classifier;
    let toml = owner_model(state_dir)?;
    let meta = owner::check(&toml).ok()?;
    match (&meta.embedding, &shipped.embedding) {
        (Some(o), Some(s))
            if same_sha(&o.mel_sha256, &s.mel_sha256)
                && same_sha(&o.embedding_sha256, &s.embedding_sha256)
                && o.embeddings == s.embeddings
                && meta.labels == shipped.labels => {}
        _ => return None,
    }
    if held.is_empty() {
        return None;
    }
    let mut model = crate::kws::front_end::load_classifier(&meta).ok()?;
    let mut scores = vec![0.0f32; meta.labels.len()];
    let mut right = 0usize;
    for e in held {
        model.classify(&e.x, &mut scores).ok()?;
        if trainer::argmax(&scores) == e.label {
            right += 1;
        }
    }
    Some(right as f32 / held.len() as f32)
}

/// The shipped model's contract, head (as a [`net::Net`]), layout and replay set, each checked
/// against its pin.
pub struct Shipped {
    pub meta: KwsMeta,
    pub head: Vec<u8>,
    pub layout: layout::Layout,
    pub net: net::Net,
    pub replay: Vec<trainer::Example>,
    /// The calibration stream, if the model folder has one.
    pub calibration: Option<calibrate::Calibration>,
}

impl Shipped {
    pub fn load(toml: &Path) -> Result<Shipped, AdaptError> {
        let mut s = Shipped::load_without_calibration(toml)?;
        s.calibration = match s.meta.calibration_path() {
            None => None,
            Some(path) => {
                let damaged = |reason: String| AdaptError::Calibration {
                    path: path.clone(),
                    reason,
                };
                let pin = s
                    .meta
                    .adapt
                    .as_ref()
                    .map_or("", |a| a.calibration_sha256.as_str());
                let bytes = layout::read_pinned(&path, pin).map_err(&damaged)?;
                let n = s.meta.embedding.as_ref().map_or(0, |e| e.embeddings).max(1);
                let c = calibrate::parse(&bytes, n, s.layout.input_len() / n).map_err(&damaged)?;
                let w = &c.written_for;
                let fits = s.meta.embedding.as_ref().is_some_and(|e| {
                    same_sha(&w.mel, &e.mel_sha256) && same_sha(&w.embedding, &e.embedding_sha256)
                }) && same_sha(&w.head, &s.meta.model.sha256);
                if !fits {
                    return Err(damaged(format!(
                        "it was written for head {} with feature models {} / {}, not the ones this folder pins",
                        short(&w.head),
                        short(&w.mel),
                        short(&w.embedding)
                    )));
                }
                Some(c)
            }
        };
        Ok(s)
    }

    /// [`Self::load`] without the calibration stream (`None`): what writing that stream
    /// starts from.
    pub fn load_without_calibration(toml: &Path) -> Result<Shipped, AdaptError> {
        let bad = |why: String| AdaptError::Shipped(format!("{}: {why}", toml.display()));
        let meta = KwsMeta::load(toml).map_err(|e| bad(e.to_string()))?;
        let (Some(spec), Some((replay_path, layout_path))) = (&meta.adapt, meta.adapt_paths())
        else {
            return Err(bad(
                "it has no [adapt] table (replay set and weight layout); use the embedding model folder (models/embedding/kws.toml) or run `python -m kws.adapt_pack <folder>` (scripts/)".into(),
            ));
        };
        let head = layout::read_pinned(&meta.model_path(), &meta.model.sha256).map_err(&bad)?;
        let layout_text = layout::read_pinned(&layout_path, &spec.layout_sha256).map_err(&bad)?;
        let layout = layout::Layout::parse(
            &String::from_utf8_lossy(&layout_text),
            &head,
            &meta.model.sha256,
            meta.labels.len(),
        )
        .map_err(|e| bad(format!("{}: {e}", layout_path.display())))?;
        let replay_bytes =
            layout::read_pinned(&replay_path, &spec.replay_sha256).map_err(|reason| {
                AdaptError::Replay {
                    path: replay_path.clone(),
                    reason,
                }
            })?;
        let replay = replay::parse(&replay_bytes, layout.input_len(), meta.labels.len()).map_err(
            |reason| AdaptError::Replay {
                path: replay_path.clone(),
                reason,
            },
        )?;
        let net = net::Net::from_tflite(&head, &layout);
        Ok(Shipped {
            meta,
            head,
            layout,
            net,
            replay,
            calibration: None,
        })
    }
}

/// Whether two sha256 pins name the same file (hex case and surrounding space aside).
fn same_sha(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The first 12 hex digits of a sha256, enough to tell two files apart in a message.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Largest difference allowed between LiteRT and the Rust forward pass on the adapted head.
pub const SELF_CHECK_TOLERANCE: f32 = 1e-4;

/// Writes the adapted head as the owner model: staged, self-checked with LiteRT, switched.
fn install(
    req: &AdaptRequest,
    shipped: &Shipped,
    owner: net::OwnerHead<'_>,
    threshold: f32,
    go_on: &dyn Fn(Stage) -> Result<(), AdaptError>,
) -> Result<(), AdaptError> {
    let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    let adapted = owner.adapted;
    if !adapted.layers.iter().all(|l| finite(&l.w) && finite(&l.b)) {
        return Err(AdaptError::SelfCheck(
            "training gave weights that are not finite numbers (it diverged); the owner model was not switched to".into(),
        ));
    }
    let head = adapted.patch_tflite(&shipped.head, &shipped.layout);
    let files = owner::OwnerFiles::new(
        &shipped.meta,
        &shipped.head,
        head,
        threshold,
        owner.beside.map(|b| b.keep()),
    )?;
    let held = owner::lock(&req.state_dir)?;
    let staged = owner::stage(&req.state_dir, &files, &held)?;
    let checked = self_check(&staged.join("kws.toml"), owner, &shipped.replay)
        .and_then(|()| go_on(Stage::Switching));
    match checked {
        Ok(()) => owner::commit(&req.state_dir, &staged, &held),
        Err(e) => {
            owner::abandon(&staged);
            Err(e)
        }
    }
}

/// LiteRT runs the written model (with its `[combine]` head, as the toy will) and agrees with
/// the Rust forward pass of `owner` on a few inputs.
pub fn self_check(
    toml: &Path,
    owner: net::OwnerHead<'_>,
    inputs: &[trainer::Example],
) -> Result<(), AdaptError> {
    let meta = owner::check(toml).map_err(AdaptError::SelfCheck)?;
    let mut model = crate::kws::front_end::load_classifier(&meta)
        .map_err(|e| AdaptError::SelfCheck(e.to_string()))?;
    if model.is_combined() != owner.beside.is_some() {
        return Err(AdaptError::SelfCheck(format!(
            "the written contract {} the shipped head, the adapted model {}; the owner model was not switched to",
            if model.is_combined() { "combines" } else { "does not combine" },
            if owner.beside.is_some() { "does" } else { "does not" }
        )));
    }
    // The `either` rule magnifies differences above the adapted head's own threshold, so the
    // joined answers get that much room; the contract's thresholds must be the ones matched,
    // exactly, and each head alone must agree to SELF_CHECK_TOLERANCE.
    let tolerance = match owner.beside {
        Some(net::Beside::Either(shipped, e)) => {
            let written = (
                meta.detector.threshold,
                meta.labels
                    .iter()
                    .zip(&e.keyword)
                    .map(|(l, &k)| {
                        k.then(|| meta.combine.as_ref().and_then(|c| c.own_threshold_of(l)))
                            .flatten()
                    })
                    .collect::<Vec<_>>(),
            );
            let matched = (
                Some(e.threshold),
                e.own_thresholds
                    .iter()
                    .zip(&e.keyword)
                    .map(|(&t, &k)| k.then_some(t))
                    .collect::<Vec<_>>(),
            );
            if written != matched {
                return Err(AdaptError::SelfCheck(format!(
                    "the written contract's thresholds {written:?} are not the matched {matched:?}; the owner model was not switched to"
                )));
            }
            let logits = meta.model.output == crate::kws::meta::ModelOutput::Logits;
            let load = |path: PathBuf, sha: &str| {
                crate::kws::model::LiteRtClassifier::load(&path, meta.labels.clone(), logits, sha)
                    .map_err(|e| AdaptError::SelfCheck(e.to_string()))
            };
            let combine = meta.combine.as_ref().zip(meta.combine_path());
            let Some((spec, second_path)) = combine else {
                return Err(AdaptError::SelfCheck(
                    "the written contract names no second head; the owner model was not switched to".into(),
                ));
            };
            for (mut head, net) in [
                (load(meta.model_path(), &meta.model.sha256)?, owner.adapted),
                (load(second_path, &spec.sha256)?, shipped),
            ] {
                agree(&mut head, |x| net.predict(x), inputs, SELF_CHECK_TOLERANCE)?;
            }
            SELF_CHECK_TOLERANCE * e.slope().max(1.0)
        }
        _ => SELF_CHECK_TOLERANCE,
    };
    agree(&mut model, |x| owner.predict(x), inputs, tolerance)
}

/// LiteRT's `model` and the Rust `mine` give the same scores, within `tolerance`, on a few of
/// `inputs`, and only finite ones.
fn agree(
    model: &mut dyn crate::kws::model::Classifier,
    mine: impl Fn(&[f32]) -> Vec<f32>,
    inputs: &[trainer::Example],
    tolerance: f32,
) -> Result<(), AdaptError> {
    let mut scores = vec![0.0f32; model.labels().len()];
    let step = (inputs.len() / 8).max(1);
    for e in inputs.iter().step_by(step).take(8) {
        model
            .classify(&e.x, &mut scores)
            .map_err(|e| AdaptError::SelfCheck(e.to_string()))?;
        let mine = mine(&e.x);
        if let Some(bad) = scores.iter().chain(&mine).find(|v| !v.is_finite()) {
            return Err(AdaptError::SelfCheck(format!(
                "the written head gives a score of {bad}, not a finite number (training diverged); the owner model was not switched to"
            )));
        }
        let diff = scores
            .iter()
            .zip(&mine)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        if diff > tolerance {
            return Err(AdaptError::SelfCheck(format!(
                "LiteRT and the trainer differ by {diff} (more than {tolerance}) on the written head; the owner model was not switched to"
            )));
        }
    }
    Ok(())
}

/// Puts back the model that was in use before the last adaptation.
pub fn undo(state_dir: &Path) -> Result<UndoOutcome, AdaptError> {
    owner::undo(state_dir)
}

/// The owner model's contract (`<state_dir>/models-owner/kws.toml`) if there is one.
pub fn owner_model(state_dir: &Path) -> Option<PathBuf> {
    let p = state_dir.join("models-owner").join("kws.toml");
    p.is_file().then_some(p)
}

pub mod calibrate;
pub mod layout;
pub mod net;
pub mod owner;
pub mod replay;
pub mod takes;
pub mod trainer;
