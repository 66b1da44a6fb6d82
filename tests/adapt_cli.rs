//! `chatterbox adapt` end to end, as a person runs it: a synthetic owner's takes (committed
//! fixtures, SVOX Pico en-GB, a voice no training used; scripts/kws/adapt_fixtures.py) are
//! adapted to, `evaluate` and `listen` then use the owner model, `adapt --undo` goes back, a
//! damaged owner model falls back with a log line, and SIGKILL at random moments during `adapt`
//! never leaves the toy without a loadable model.
//!
//! Power-cut trials: 4 in `cargo test` (each runs `adapt` in a debug build, ~15 s);
//! `CHATTERBOX_POWER_CUT_TRIALS=N` for more.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use rand::{Rng, SeedableRng};

mod common;
use common::alsa::AlsaSandbox;
use common::toy::{write_config, ToyConfig};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn takes() -> PathBuf {
    repo().join("tests/fixtures/adapt_owner")
}

struct Toy {
    _dir: tempfile::TempDir,
    config: PathBuf,
    state: PathBuf,
    root: PathBuf,
}

impl Toy {
    fn new() -> Toy {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let state = root.join("state");
        let config = root.join("config.toml");
        // The configured model is the shipped embedding one, so "fallback" is well defined.
        std::fs::write(
            &config,
            format!(
                "[keywords]\nstate_dir = {:?}\nmodel = {:?}\n",
                state.display().to_string(),
                repo()
                    .join("models/embedding/kws.toml")
                    .display()
                    .to_string()
            ),
        )
        .unwrap();
        Toy {
            _dir: dir,
            config,
            state,
            root,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
        c.arg("-c").arg(&self.config).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn adapt(&self, seed: u64) -> Output {
        self.run(&[
            "adapt",
            "--takes",
            takes().to_str().unwrap(),
            "--seed",
            &seed.to_string(),
        ])
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The two figures `adapt` printed: held-out accuracy of the shipped and the adapted model, in
/// percent as printed ("held-out takes (8): shipped model 37.5 %, adapted 75.0 % (…)").
fn adapt_figures(said: &str) -> (String, String) {
    let line = said
        .lines()
        .find(|l| l.starts_with("held-out takes (8): shipped model "))
        .unwrap_or_else(|| panic!("no figures line in: {said}"));
    let after = |key: &str| {
        line.split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    };
    (
        after("shipped model ").unwrap(),
        after(", adapted ").unwrap(),
    )
}

/// The accuracy `evaluate` printed on its `all` row, e.g. "75.0".
fn evaluate_all(said: &str) -> String {
    let line = said
        .lines()
        .find(|l| l.starts_with("all "))
        .unwrap_or_else(|| panic!("no `all` row in: {said}"));
    line.split_whitespace().rev().nth(1).unwrap().to_string()
}

/// The highest score `word` got in any hop `listen --all` printed
/// ("   2.190 s  left 0.87  unknown 0.13  yes 0.00").
fn peak(said: &str, word: &str) -> f32 {
    said.lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("s"))
        .flat_map(|l| {
            let t: Vec<&str> = l.split_whitespace().skip(2).collect();
            t.chunks(2)
                .filter(|c| c.len() == 2 && c[0] == word)
                .filter_map(|c| c[1].parse::<f32>().ok())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f32::max)
}

/// The fixture take of `word` with silence around it, as the microphone would bring it.
fn padded_take(word: &str, dir: &Path) -> PathBuf {
    let mut r = hound::WavReader::open(takes().join(word).join("owner_nohash_2.wav")).unwrap();
    let spec = r.spec();
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let path = dir.join(format!("{word}.wav"));
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for s in std::iter::repeat_n(0, 16_000)
        .chain(samples)
        .chain(std::iter::repeat_n(0, 24_000))
    {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    path
}

#[test]
fn adapt_then_evaluate_and_listen_use_the_owner_model_and_undo_goes_back() {
    let toy = Toy::new();
    let out = toy.adapt(1);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let (shipped, adapted) = adapt_figures(&said);
    assert!(
        adapted.parse::<f32>().unwrap() > shipped.parse::<f32>().unwrap(),
        "{said}"
    );
    assert!(said.contains("switched to the adapted model"), "{said}");
    assert!(chatterbox::adapt::owner_model(&toy.state).is_some());

    // `evaluate` now uses the owner model and gets the figure `adapt` printed for it.
    let eval = toy.run(&["evaluate", "--held-out", takes().to_str().unwrap()]);
    let said = text(&eval);
    assert!(said.contains("owner's adapted model"), "{said}");
    assert_eq!(evaluate_all(&said), adapted, "{said}");

    // "left" is the word the shipped head is least sure of in this voice; `listen` with the
    // owner model scores it higher (`--all`: every hop's top scores, so the comparison does
    // not hang on the detector threshold).
    let left = padded_take("left", &toy.root);
    let owner_heard = text(&toy.run(&["listen", "--all", left.to_str().unwrap()]));
    assert!(
        owner_heard.contains("owner's adapted model"),
        "{owner_heard}"
    );

    let undo = text(&toy.run(&["adapt", "--undo"]));
    assert!(
        undo.contains("configured (shipped) model is in use again"),
        "{undo}"
    );
    assert!(chatterbox::adapt::owner_model(&toy.state).is_none());
    let heard = text(&toy.run(&["listen", "--all", left.to_str().unwrap()]));
    assert!(!heard.contains("owner's adapted model"), "{heard}");
    assert!(
        peak(&owner_heard, "left") > peak(&heard, "left") + 0.05,
        "the owner model hears 'left' better than the shipped one:\n{owner_heard}\nshipped:\n{heard}"
    );
}

/// The whole owner path through the microphone: `enroll` records 3 takes of every word and then
/// the 12 words that are not commands once each, from the ALSA file-plugin microphone (the
/// fixture takes, each in 2 s of room silence), saves them in the Speech Commands layout (the
/// others as `unknown`), and adapts to them at the end.
#[test]
fn enroll_through_the_microphone_then_adapts() {
    let sb = AlsaSandbox::new().expect("sandbox");
    let config = write_config(
        &sb,
        &ToyConfig {
            audio: "rate = 16000\nchannels = 1\npace_capture = false\n",
            ..ToyConfig::default()
        },
    );
    let state = sb.home().join("state");
    let mut text_cfg = std::fs::read_to_string(&config).unwrap();
    text_cfg.push_str(&format!(
        "model = {:?}\nstate_dir = {:?}\n",
        repo()
            .join("models/embedding/kws.toml")
            .display()
            .to_string(),
        state.display().to_string()
    ));
    std::fs::write(&config, text_cfg).unwrap();
    let mut mic = Vec::new();
    for word in ["go", "down", "up", "stop", "yes", "left", "right", "no"] {
        for i in 0..3 {
            let mut r =
                hound::WavReader::open(takes().join(word).join(format!("owner_nohash_{i}.wav")))
                    .unwrap();
            let take: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
            let lead = (32_000 - take.len()) / 2;
            mic.extend(std::iter::repeat_n(0i16, lead));
            mic.extend(&take);
            mic.extend(std::iter::repeat_n(0i16, 32_000 - lead - take.len()));
        }
    }
    // Then the words that are not commands, once each, as `enroll` asks for them after the
    // keywords (the shipped model's `[adapt] other_words`, in order).
    let other = repo().join("tests/fixtures/adapt_owner_other/unknown");
    for i in 0..12 {
        let mut r = hound::WavReader::open(other.join(format!("owner_nohash_{i}.wav"))).unwrap();
        let take: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        let lead = (32_000 - take.len()) / 2;
        mic.extend(std::iter::repeat_n(0i16, lead));
        mic.extend(&take);
        mic.extend(std::iter::repeat_n(0i16, 32_000 - lead - take.len()));
    }
    sb.write_mic(&mic).unwrap();
    let dir = sb.home().join("enroll");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatterbox"));
    sb.configure(&mut cmd);
    let out = cmd
        .arg("-c")
        .arg(&config)
        .args(["enroll", "--takes", "3", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Say \"rainbow\" now (2/12)"), "{said}");
    assert!(said.contains("36 takes in"), "{said}");
    let listed = std::fs::read_to_string(dir.join("testing_list.txt")).unwrap();
    assert_eq!(listed.lines().count(), 12, "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("unknown/")).count(),
        4,
        "{listed}"
    );
    assert!(said.contains("held-out takes (12)"), "{said}");
    assert!(said.contains("switched to the adapted model"), "{said}");
    assert!(chatterbox::adapt::owner::check(&state.join("models-owner/kws.toml")).is_ok());
}

#[test]
fn a_damaged_owner_model_falls_back_to_the_configured_one_and_says_so() {
    let toy = Toy::new();
    let adapted = toy.adapt(2);
    assert!(adapted.status.success());
    let (shipped, _) = adapt_figures(&text(&adapted));
    let head = toy.state.join("models-owner/head.tflite");
    let mut bytes = std::fs::read(&head).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&head, bytes).unwrap();
    let out = toy.run(&["evaluate", "--held-out", takes().to_str().unwrap()]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("owner's adapted model is damaged") && said.contains("adapt --undo"),
        "{said}"
    );
    assert_eq!(
        evaluate_all(&said),
        shipped,
        "the shipped model's figure: {said}"
    );
}

#[test]
fn adapt_without_takes_says_how_to_record_them() {
    let toy = Toy::new();
    let out = toy.run(&[
        "adapt",
        "--takes",
        toy.root.join("nowhere").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("no takes in") && said.contains("chatterbox enroll"),
        "{said}"
    );
}

/// SIGKILL at random moments of `adapt` (biased towards its end, where the files are written
/// and switched): afterwards an owner model is in use and whole (the first one, or the new
/// one), and the next `adapt` and `--undo` work.
#[test]
fn a_power_cut_during_adapt_leaves_a_loadable_model_in_use() {
    let trials: usize = std::env::var("CHATTERBOX_POWER_CUT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let toy = Toy::new();
    let t = Instant::now();
    assert!(toy.adapt(1).status.success());
    let full = t.elapsed();
    let first = std::fs::read(toy.state.join("models-owner/head.tflite")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut heads = vec![first];
    let read = |p: &str| std::fs::read(toy.state.join(p).join("head.tflite")).ok();
    for trial in 0..trials {
        let (in_use, backup) = (read("models-owner"), read("models-owner.previous"));
        let mut child = toy
            .command(&[
                "adapt",
                "--takes",
                takes().to_str().unwrap(),
                "--seed",
                &(10 + trial).to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let at = full.mul_f64(rng.random_range(0.6..1.05));
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        let owner = chatterbox::adapt::owner_model(&toy.state).expect("an owner model is in use");
        chatterbox::adapt::owner::check(&owner)
            .unwrap_or_else(|e| panic!("trial {trial} (kill after {at:?}): {e}"));
        let meta = chatterbox::kws::meta::KwsMeta::load(&owner).unwrap();
        chatterbox::kws::front_end::load_classifier(&meta).expect("LiteRT loads it");
        let head = std::fs::read(toy.state.join("models-owner/head.tflite")).unwrap();
        // Nothing `undo` could restore is lost: once leftovers are put in order, either the
        // switch happened and the model in use before is the backup, or nothing changed.
        let held = chatterbox::adapt::owner::lock(&toy.state).unwrap();
        chatterbox::adapt::owner::recover(&toy.state, &held).unwrap();
        drop(held);
        let now_backup = read("models-owner.previous");
        if Some(&head) == in_use.as_ref() {
            assert_eq!(now_backup, backup, "trial {trial}: the backup changed");
        } else {
            assert_eq!(
                now_backup, in_use,
                "trial {trial}: the switched-out model is the backup"
            );
        }
        if !heads.contains(&head) {
            heads.push(head);
        }
    }
    println!(
        "power cut during adapt: {trials} trials over {full:?} runs, {} distinct models in use",
        heads.len()
    );
    assert!(toy.adapt(99).status.success());
    // (Whether seed 99 switches depends on the owner model the trials left in use: it must
    // beat that one too.)
    let backup = toy.state.join("models-owner.previous").exists();
    assert_eq!(
        chatterbox::adapt::undo(&toy.state).unwrap(),
        if backup {
            chatterbox::adapt::UndoOutcome::RestoredPrevious
        } else {
            chatterbox::adapt::UndoOutcome::BackToShipped
        }
    );
}

/// Without `--takes`, `adapt` reads `<state>/enroll`, where the button gesture and `enroll`
/// put the takes; an empty one is named in the error with the command that fills it.
#[test]
fn adapt_reads_the_state_folders_takes_by_default() {
    let toy = Toy::new();
    let out = toy.run(&["adapt"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    let folder = toy.state.join("enroll");
    assert!(
        said.contains(&format!("no takes in {}", folder.display())),
        "{said}"
    );
    assert!(said.contains("chatterbox enroll --dir"), "{said}");
}
