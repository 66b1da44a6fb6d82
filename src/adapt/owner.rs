//! The owner model on disk: `<state_dir>/models-owner/` (in use), `models-owner.previous/`
//! (what `undo` restores), written so that a power cut at any instant leaves a loadable model
//! in use and nothing that cannot be restored.
//!
//! A new model is built in `.models-owner.new/` (every file fsynced, then the folder), then
//! swapped with the one in use by one atomic `renameat2(RENAME_EXCHANGE)`; the old one then
//! becomes `models-owner.previous`. Each folder carries a `generation` number so that a
//! leftover `.models-owner.new` can be told apart after a crash: older than the one in use, it
//! is the swapped-out model (kept as the backup); newer, an unfinished build (deleted).
//!
//! The owner contract names the shipped feature models by absolute path with their pins instead
//! of copying them: they are 2.4 MB, identical for every owner, and the adapted head is only
//! valid with exactly those files; if the shipped folder changes or moves, the pins fail and
//! the daemon falls back to the configured model with a log line. The shipped head an owner
//! model keeps beside its own (`[combine]`) is copied into the folder instead (292 KB): a new
//! release usually retrains only the head, and that must not take away the owner's voice.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{AdaptError, UndoOutcome};
use crate::kws::meta::KwsMeta;

pub const CURRENT: &str = "models-owner";
pub const PREVIOUS: &str = "models-owner.previous";
const NEW: &str = ".models-owner.new";
const TRASH: &str = ".models-owner.trash";
const GENERATION: &str = "generation";
const LOCK: &str = ".models-owner.lock";

/// Held while the owner model is being changed (`adapt` writing and switching, `undo`): the
/// toy's enroller and a `chatterbox adapt` or `--undo` run by hand must not interleave (each
/// would take the other's staged folder for a crash's leftovers and delete or move it).
/// Released when dropped (or when the process dies). [`recover`], [`stage`] and [`commit`]
/// ask for it, so they cannot be called without it.
pub struct ChangeLock(#[allow(dead_code)] File);

/// Takes the [`ChangeLock`] of `state`, or says who holds it; does not wait.
pub fn lock(state: &Path) -> Result<ChangeLock, AdaptError> {
    use std::os::fd::AsRawFd;
    let err = write_err(state);
    fs::create_dir_all(state).map_err(&err)?;
    // Read-only when it exists: flock needs no write access, and the file may belong to
    // whoever ran `adapt` first (root through sudo, or the toy's user).
    let path = state.join(LOCK);
    let file = match File::open(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path),
        other => other,
    }
    .map_err(&err)?;
    // SAFETY: a valid open descriptor; flock has no memory effects.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(ChangeLock(file));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        return Err(AdaptError::Busy {
            dir: state.to_path_buf(),
        });
    }
    Err(err(e))
}

/// The shipped head's copy in an owner model that keeps it beside the adapted one.
pub const SHIPPED_HEAD: &str = "shipped_head.tflite";

/// The files of a new owner model, built together so the contract names exactly the files
/// written beside it ([`OwnerFiles::new`]).
pub struct OwnerFiles {
    head: Vec<u8>,
    labels: String,
    shipped_head: Option<Vec<u8>>,
    contract: String,
}

impl OwnerFiles {
    /// The adapted `head` as an owner model of `shipped` (its contract and head bytes), with
    /// the detector `threshold`, and with a copy of the shipped head beside it, joined as
    /// `beside` says (see [`contract`]).
    pub fn new(
        shipped: &KwsMeta,
        shipped_head: &[u8],
        head: Vec<u8>,
        threshold: f32,
        beside: Option<KeepShipped>,
    ) -> Result<OwnerFiles, AdaptError> {
        let sha = crate::kws::model::sha256_hex(&head);
        if beside.is_some()
            && !super::same_sha(
                &crate::kws::model::sha256_hex(shipped_head),
                &shipped.model.sha256,
            )
        {
            return Err(AdaptError::Shipped(format!(
                "{}: the head bytes given are not the file its contract pins",
                shipped.model_path().display()
            )));
        }
        Ok(OwnerFiles {
            shipped_head: beside.as_ref().map(|_| shipped_head.to_vec()),
            contract: contract(shipped, &sha, threshold, beside)?,
            labels: shipped.labels.join("\n") + "\n",
            head,
        })
    }

    /// The contract text (`kws.toml`).
    pub fn contract(&self) -> &str {
        &self.contract
    }
}

fn write_err(dir: &Path) -> impl Fn(io::Error) -> AdaptError + '_ {
    move |source| AdaptError::Write {
        dir: dir.to_path_buf(),
        source,
    }
}

/// The folder's generation; `None` for a folder whose build never wrote one.
fn generation_of(dir: &Path) -> Option<u64> {
    fs::read_to_string(dir.join(GENERATION))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a folder by first renaming it out of the way (atomic), so a crash mid-removal never
/// leaves a half-deleted model under a name that is loaded or restored.
fn discard(state: &Path, dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let trash = state.join(TRASH);
    if trash.exists() {
        fs::remove_dir_all(&trash)?;
    }
    fs::rename(dir, &trash)?;
    sync_dir(state)?;
    fs::remove_dir_all(&trash)
}

/// Swaps two existing folders atomically (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts leftovers of an interrupted write or undo in order (see the module docs).
pub fn recover(state: &Path, _held: &ChangeLock) -> Result<(), AdaptError> {
    let err = write_err(state);
    let (new, cur, prev) = (state.join(NEW), state.join(CURRENT), state.join(PREVIOUS));
    if new.exists() {
        let swapped_out = matches!(
            (generation_of(&new), generation_of(&cur)),
            (Some(n), Some(c)) if n < c
        );
        if swapped_out {
            // Killed after the exchange: the model in use before is the backup now; the
            // older backup was on its way out.
            discard(state, &prev).map_err(&err)?;
            fs::rename(&new, &prev).map_err(&err)?;
            sync_dir(state).map_err(&err)?;
        } else {
            fs::remove_dir_all(&new).map_err(&err)?;
        }
    }
    // Killed during `undo` between its exchange and dropping the undone model: the backup is
    // newer than the model in use. Finish the undo, or the next one would go forward again
    // (and delete the model it was asked to restore).
    if matches!(
        (generation_of(&prev), generation_of(&cur)),
        (Some(p), Some(c)) if p > c
    ) {
        discard(state, &prev).map_err(&err)?;
    }
    let trash = state.join(TRASH);
    if trash.exists() {
        fs::remove_dir_all(&trash).map_err(&err)?;
    }
    Ok(())
}

/// Builds the new model's folder (every file fsynced) and returns it; not in use yet. The
/// [`ChangeLock`] it asks for is held from here to [`commit`].
pub fn stage(state: &Path, files: &OwnerFiles, held: &ChangeLock) -> Result<PathBuf, AdaptError> {
    let err = write_err(state);
    fs::create_dir_all(state).map_err(&err)?;
    recover(state, held)?;
    let new = state.join(NEW);
    fs::create_dir(&new).map_err(&err)?;
    let generation = generation_of(&state.join(CURRENT))
        .unwrap_or(0)
        .max(generation_of(&state.join(PREVIOUS)).unwrap_or(0))
        + 1;
    let generation_text = format!("{generation}\n");
    // The generation first: a build cut short always has a generation newer than the model in
    // use (or none), so `recover` deletes it.
    let shipped_head = files.shipped_head.as_deref().map(|b| (SHIPPED_HEAD, b));
    for (name, bytes) in [
        (GENERATION, generation_text.as_bytes()),
        ("head.tflite", &files.head[..]),
        ("labels.txt", files.labels.as_bytes()),
    ]
    .into_iter()
    .chain(shipped_head)
    .chain([("kws.toml", files.contract.as_bytes())])
    {
        write_synced(&new.join(name), bytes).map_err(&err)?;
    }
    sync_dir(&new).map_err(&err)?;
    Ok(new)
}

/// Makes the staged folder the owner model; the one in use before becomes the backup (or, if
/// the shipped model was in use, any older backup is dropped so `undo` goes back to shipped).
pub fn commit(state: &Path, staged: &Path, _held: &ChangeLock) -> Result<(), AdaptError> {
    let err = write_err(state);
    let (cur, prev) = (state.join(CURRENT), state.join(PREVIOUS));
    if cur.exists() {
        // The exchange first: until it is done nothing else has changed, so a kill or an
        // error before it leaves the model in use and its backup as they were; after it,
        // `recover` knows the swapped-out folder by its older generation.
        exchange(staged, &cur).map_err(&err)?;
        sync_dir(state).map_err(&err)?;
        discard(state, &prev).map_err(&err)?;
        fs::rename(staged, &prev).map_err(&err)?;
    } else {
        discard(state, &prev).map_err(&err)?;
        fs::rename(staged, &cur).map_err(&err)?;
    }
    sync_dir(state).map_err(&err)
}

/// Drops a staged folder that was not committed.
pub fn abandon(staged: &Path) {
    let _ = fs::remove_dir_all(staged);
}

/// `adapt --undo`.
pub fn undo(state: &Path) -> Result<UndoOutcome, AdaptError> {
    let err = write_err(state);
    if !state.is_dir() {
        return Ok(UndoOutcome::NothingToUndo);
    }
    let held = lock(state)?;
    recover(state, &held)?;
    let (cur, prev) = (state.join(CURRENT), state.join(PREVIOUS));
    if !cur.exists() {
        return Ok(UndoOutcome::NothingToUndo);
    }
    if prev.exists() {
        exchange(&prev, &cur).map_err(&err)?;
        sync_dir(state).map_err(&err)?;
        discard(state, &prev).map_err(&err)?;
        Ok(UndoOutcome::RestoredPrevious)
    } else {
        discard(state, &cur).map_err(&err)?;
        Ok(UndoOutcome::BackToShipped)
    }
}

/// Checks a contract whole: it parses, and every file it names matches its pin.
pub fn check(toml: &Path) -> Result<KwsMeta, String> {
    let meta = KwsMeta::load(toml).map_err(|e| e.to_string())?;
    let mut files = vec![(meta.model_path(), meta.model.sha256.clone())];
    if let (Some(e), Some((mel, emb))) = (&meta.embedding, meta.embedding_paths()) {
        files.push((mel, e.mel_sha256.clone()));
        files.push((emb, e.embedding_sha256.clone()));
    }
    if let (Some(c), Some(path)) = (&meta.combine, meta.combine_path()) {
        files.push((path, c.sha256.clone()));
    }
    for (path, pin) in files {
        super::layout::read_pinned(&path, &pin)?;
    }
    Ok(meta)
}

/// The owner model if there is one and it is whole; a damaged one is logged (naming the
/// problem and the fix) and skipped, so the configured model is used and the button keeps
/// working.
pub fn resolve(state: &Path) -> Option<PathBuf> {
    let owner = super::owner_model(state)?;
    match check(&owner) {
        Ok(_) => {
            log::info!(
                "keyword model: the owner's adapted model {} (`chatterbox adapt --undo` goes back)",
                owner.display()
            );
            Some(owner)
        }
        Err(e) => {
            log::warn!(
                "keyword model: the owner's adapted model is damaged ({e}); using the configured model (keywords.model) instead. Run `chatterbox adapt` again, or `chatterbox adapt --undo`"
            );
            None
        }
    }
}

/// How much of the shipped threshold's distance to 1 the owner model keeps when the model
/// folder has no calibration stream (`super::calibrate`, which sets the threshold otherwise):
/// its threshold is then `1 - OWNER_THRESHOLD_MARGIN * (1 - shipped)`, 0.99 for the shipped
/// 0.98.
///
/// Why a stricter one at all: adapting makes the head surer of keywords in every voice, not
/// only the owner's; at the shipped threshold it acts on more non-keyword speech. 0.99 was
/// chosen on validation owners, single windows (`cargo bench --bench adapt -- --val
/// --thresholds`, docs/adapt-threshold.md), as the loosest of 0.985-0.997 at which no run
/// acts on significantly more of the other voices' non-keyword clips. The toy's streams
/// later showed that a fixed value is too strict for some owners and not for others (the
/// README's "In the toy's streams"), which is why the shipped model folder now carries the
/// calibration stream. A number in `keywords.threshold` overrides either, as it overrides
/// every model's.
pub const OWNER_THRESHOLD_MARGIN: f32 = 0.5;

/// The detector threshold written into an owner model's contract, from the shipped model's
/// own (`None`: it names none, and the runtime's default for that case applies).
pub fn owner_threshold(shipped: Option<f32>) -> f32 {
    let t = shipped.unwrap_or(crate::config::Threshold::WITHOUT_MODEL_SETTING);
    // Below 1: a model's threshold must be (KwsMeta), and f32 rounding could reach it.
    (1.0 - OWNER_THRESHOLD_MARGIN * (1.0 - t)).min(super::calibrate::BELOW_ONE)
}

/// How an owner model keeps the shipped head beside its own: the `[combine]` rule it writes.
#[derive(Clone, Debug, PartialEq)]
pub enum KeepShipped {
    /// `rule = "max"`.
    Max,
    /// `rule = "either"` with the adapted head's threshold for each label (in label order;
    /// those of `silence` and `unknown` are not written).
    Either { own_thresholds: Vec<f32> },
}

/// The owner contract: the adapted head beside it, the shipped feature models by absolute
/// path, all pinned, and its detector `threshold` (`super::plan`). With `beside`, a
/// `[combine]` table names the copy of the shipped head beside it ([`SHIPPED_HEAD`], pinned
/// with the shipped pin) and how the two heads' answers are joined (`kws::head`).
fn contract(
    shipped: &KwsMeta,
    head_sha256: &str,
    threshold: f32,
    beside: Option<KeepShipped>,
) -> Result<String, AdaptError> {
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(AdaptError::Model(format!(
            "the owner model's threshold came out as {threshold}; it must lie between 0 and 1"
        )));
    }
    let (Some(e), Some((mel, emb))) = (&shipped.embedding, shipped.embedding_paths()) else {
        return Err(AdaptError::Shipped(
            "its front end is not the embedding one".into(),
        ));
    };
    let abs = |p: PathBuf| -> Result<String, AdaptError> {
        let p = fs::canonicalize(&p)
            .map_err(|err| AdaptError::Shipped(format!("{}: {err}", p.display())))?;
        let s = p
            .to_str()
            .ok_or_else(|| AdaptError::Shipped(format!("{} is not UTF-8", p.display())))?;
        Ok(toml::Value::String(s.to_string()).to_string())
    };
    let detector = format!(
        "\n[detector]\n# Set by `chatterbox adapt`, which printed how.\nthreshold = {threshold}\n"
    );
    let pin = shipped.model.sha256.trim();
    let combine = match beside {
        None => String::new(),
        Some(KeepShipped::Max) => format!(
            "\n# Per class, the larger of this head's and the shipped head's probability: what the\n\
             # shipped model heard in other voices it still hears.\n\
             [combine]\nrule = \"max\"\nfile = \"{SHIPPED_HEAD}\"\nsha256 = \"{pin}\"\n"
        ),
        Some(KeepShipped::Either { own_thresholds }) => {
            let words: Vec<(&String, f32)> = shipped
                .labels
                .iter()
                .zip(own_thresholds.iter().copied())
                .filter(|(l, _)| crate::kws::meta::is_keyword(l))
                .collect();
            if own_thresholds.len() != shipped.labels.len() {
                return Err(AdaptError::Model(format!(
                    "the adapted head got {} thresholds for {} labels; one per label is needed",
                    own_thresholds.len(),
                    shipped.labels.len()
                )));
            }
            if words.is_empty() {
                return Err(AdaptError::Shipped(
                    "its labels hold no keyword, so the adapted head has no threshold to write"
                        .into(),
                ));
            }
            if let Some((w, t)) = words.iter().find(|(_, t)| !(*t > 0.0 && *t < 1.0)) {
                return Err(AdaptError::Model(format!(
                    "the adapted head's threshold for '{w}' came out as {t}; it must lie between 0 and 1"
                )));
            }
            // `own_threshold` is the strictest, for any keyword the table does not name (none
            // here); the table names every keyword.
            let strictest = words.iter().map(|&(_, t)| t).fold(0.0, f32::max);
            let table: String = words
                .iter()
                .map(|(w, t)| format!("{} = {t}\n", toml::Value::String(w.to_string())))
                .collect();
            format!(
                "\n# A keyword is heard when the shipped head hears it at the detector threshold, or\n\
                 # this head at its own (matched word by word by `chatterbox adapt`): what the shipped\n\
                 # model heard in any voice it still hears, at its own threshold.\n\
                 [combine]\nrule = \"either\"\nfile = \"{SHIPPED_HEAD}\"\nsha256 = \"{pin}\"\n\
                 own_threshold = {strictest}\n\n[combine.own_thresholds]\n{table}"
            )
        }
    };
    Ok(format!(
        "# Written by `chatterbox adapt`: the shipped head adapted to the owner's voice.\n\
         # The feature models are the shipped ones, named by path and pinned.\n\
         front_end = \"embedding\"\n\n[embedding]\nmel_file = {}\nmel_sha256 = \"{}\"\n\
         embedding_file = {}\nembedding_sha256 = \"{}\"\nembeddings = {}\n\n[model]\n\
         file = \"head.tflite\"\nsha256 = \"{head_sha256}\"\nlabels = \"labels.txt\"\n\
         output = \"softmax\"\n{detector}{combine}",
        abs(mel)?,
        e.mel_sha256.trim(),
        abs(emb)?,
        e.embedding_sha256.trim(),
        e.embeddings
    ))
}
