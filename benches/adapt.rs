//! The measured trial of `chatterbox adapt` (issue 12): a held-out TEST voice plays the owner.
//!
//!     ~/.cache/chatterbox/venv-train/bin/python -m kws.adapt_trial   (from scripts/: takes + eval sets)
//!     cargo bench --bench adapt                     (all variants; figures for the README)
//!     cargo bench --bench adapt -- --cli            (also time and peak memory of the real
//!                                                    `chatterbox adapt`, pinned to one core)
//!
//! The variant is CHOSEN on validation owners, never on the test ones:
//!
//!     ~/.cache/chatterbox/venv-train/bin/python -m kws.adapt_trial --split val
//!     ADAPT_TRIAL_SPLIT=val cargo bench --bench adapt   (or: cargo bench --bench adapt -- --val)
//!
//! reads `adapt-trial-val/`: validation voice families play the owners, their eval sets are
//! the validation clips, "other voices" the other validation families, and the false accepts
//! are counted on the validation half of the real English speech. `ADAPT_TRIAL_SEED=<n>`
//! trains with another seed (default 1); `ADAPT_TRIAL_DIR=<dir>` reads a trial written with
//! `adapt_trial.py --out <dir>` (e.g. `--per-word 6`, the toy's own count); `--blend` compares
//! step counts, learning rates and weight blends towards the shipped head instead, `--distill`
//! the grid this release chose from: with and without the reversed takes, distillation weights
//! (`TrainConfig::distill`), how often `unknown` examples are drawn, step counts;
//! `--per-family` also prints every other voice's own change.
//!
//! For every owner family and training variant: the owner's held-out keyword takes (what
//! `adapt` decides on, with the held-out other words), that voice's clips in the synthetic
//! noisy test set (all; its keyword clips / the rest; the clips the variant fixed and broke
//! with the sign-test p of that split; only those unlike the takes' settings), the other
//! held-out test voices, and false accepts per hour on the test
//! half of the real English speech (a simplified detector: scores averaged over 3 windows =
//! 240 ms, 0.85, 1 s refractory per word, as the shipped defaults).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chatterbox::adapt::trainer::{accuracy, argmax, train, weigh_unknown, Example, TrainConfig};
use chatterbox::adapt::{net::Net, prepare, replay, AdaptRequest};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `--val` or `ADAPT_TRIAL_SPLIT=val`: the validation owners (to choose on).
fn val_split(args: &[String]) -> bool {
    args.iter().any(|a| a == "--val")
        || std::env::var("ADAPT_TRIAL_SPLIT").is_ok_and(|s| s == "val")
}

fn trial_dir(val: bool) -> PathBuf {
    if let Some(dir) = std::env::var_os("ADAPT_TRIAL_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("CHATTERBOX_KWS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/chatterbox/kws-data")
        })
        .join(if val {
            "adapt-trial-val"
        } else {
            "adapt-trial"
        })
}

fn load_eval(path: &Path, input_len: usize, classes: usize) -> Vec<Example> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run python -m kws.adapt_trial first",
            path.display()
        )
    });
    replay::parse(&bytes, input_len, classes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// False-accept events on a stream of windows (all non-keyword speech).
fn false_accepts(net: &Net, windows: &[Example], keywords: usize) -> usize {
    let probs: Vec<Vec<f32>> = windows.iter().map(|e| net.predict(&e.x)).collect();
    let mut last: Vec<Option<usize>> = vec![None; keywords];
    let mut events = 0;
    for i in 2..probs.len() {
        let avg: Vec<f32> = (0..keywords)
            .map(|c| (probs[i][c] + probs[i - 1][c] + probs[i - 2][c]) / 3.0)
            .collect();
        let w = argmax(&avg);
        if avg[w] >= 0.85 && last[w].is_none_or(|l| i - l >= 13) {
            events += 1;
            last[w] = Some(i);
        }
    }
    events
}

/// Accuracy on the keyword clips and on the rest (unknown words, silence) of a set, as
/// "kw / rest": most of the owner's takes are keywords, so the two can move apart.
fn split_acc(net: &Net, set: &[Example], keywords: usize) -> String {
    let (kw, rest): (Vec<Example>, Vec<Example>) =
        set.iter().cloned().partition(|e| e.label < keywords);
    format!(
        "{:.1} / {:.1}",
        100.0 * accuracy(net, &kw),
        100.0 * accuracy(net, &rest)
    )
}

/// `shipped + alpha * (adapted - shipped)`, weight by weight (weight-space ensembling).
fn blend(shipped: &Net, adapted: &Net, alpha: f32) -> Net {
    let mut out = adapted.clone();
    for (o, s) in out.layers.iter_mut().zip(&shipped.layers) {
        for (a, b) in o.w.iter_mut().zip(&s.w) {
            *a = b + alpha * (*a - b);
        }
        for (a, b) in o.b.iter_mut().zip(&s.b) {
            *a = b + alpha * (*a - b);
        }
    }
    out
}

/// Clips of `set` the adapted net gets right and the shipped one wrong ("fixed"), the other way
/// round ("broken"), and the two-sided exact sign-test p of that split (McNemar's test): whether
/// a change in accuracy is more than the luck of which clips moved.
fn paired(shipped: &Net, adapted: &Net, set: &[Example]) -> String {
    let (mut fixed, mut broken) = (0u64, 0u64);
    for e in set {
        let (s, a) = (
            argmax(&shipped.predict(&e.x)) == e.label,
            argmax(&adapted.predict(&e.x)) == e.label,
        );
        match (s, a) {
            (false, true) => fixed += 1,
            (true, false) => broken += 1,
            _ => {}
        }
    }
    let n = fixed + broken;
    let k = fixed.min(broken);
    // P(X <= k) for X ~ Binomial(n, 1/2), doubled, in logs to stay finite for large n.
    let ln_choose = |n: u64, i: u64| -> f64 {
        (1..=i)
            .map(|j| ((n - i + j) as f64).ln() - (j as f64).ln())
            .sum()
    };
    let tail: f64 = (0..=k)
        .map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    format!("+{fixed} / -{broken} (p {:.3})", (2.0 * tail).min(1.0))
}

fn pct(x: f32) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let val = val_split(&args);
    let split = if val { "val" } else { "test" };
    let dir = trial_dir(val);
    let meta: serde_json_lite::Meta = serde_json_lite::read(&dir.join("eval-meta.json"));
    let shipped_meta = repo().join("models/embedding/kws.toml");
    // First, while this process is small: a forked child's peak RSS counts the parent's pages
    // until exec.
    if args.iter().any(|a| a == "--cli") {
        cli_cost(&dir, &meta.families[0], &shipped_meta);
    }
    let d = TrainConfig::default;
    // A name containing "keyword takes only" trains without the owner's other words.
    // The defaults of earlier sessions, to see what each change did.
    let no_reversed = || TrainConfig {
        reversed_takes: false,
        other_word_repeats: 3,
        steps: 300,
        ..d()
    };
    let undistilled = || TrainConfig {
        distill: 0.0,
        ..no_reversed()
    };
    let mut variants: Vec<(&str, TrainConfig)> = vec![
        (
            "whole head, reversed takes, distill 0.5, 450 steps (default)",
            d(),
        ),
        (
            "whole head, other words x 3, distill 0.5, 300 steps (before reversed takes)",
            no_reversed(),
        ),
        (
            "whole head, other words x 3, labels only (before distillation)",
            undistilled(),
        ),
        (
            "whole head, labels only, keyword takes only (before the other words)",
            undistilled(),
        ),
        (
            "last layer",
            TrainConfig {
                first_trainable: 2,
                ..d()
            },
        ),
        (
            "last 2 layers",
            TrainConfig {
                first_trainable: 1,
                ..d()
            },
        ),
        (
            "whole head, no replay",
            TrainConfig {
                batch_replay: 0,
                ..d()
            },
        ),
        (
            "whole head, 2 room/noise copies per take",
            TrainConfig {
                noisy_copies: 2,
                ..d()
            },
        ),
    ];
    if args.iter().any(|a| a == "--blend") {
        variants = vec![("default", d())];
        for steps in [300usize, 600, 1200] {
            for lr in [5e-4f32, 1e-3] {
                for a in ["1.0", "0.7", "0.5"] {
                    let name: &'static str =
                        Box::leak(format!("{steps} steps, lr {lr}, blend {a}").into_boxed_str());
                    variants.push((
                        name,
                        TrainConfig {
                            steps,
                            learning_rate: lr,
                            ..d()
                        },
                    ));
                }
            }
        }
    }
    if args.iter().any(|a| a == "--distill") {
        variants = vec![("default", d()), ("before reversed takes", no_reversed())];
        for (reversed, a, repeats, steps) in [
            (false, 0.3f32, 3usize, 300usize),
            (false, 0.5, 3, 600),
            (false, 0.5, 3, 300),
            (true, 0.5, 1, 300),
            (true, 0.5, 2, 300),
            (true, 0.3, 1, 300),
            (true, 0.0, 1, 300),
            (true, 0.5, 1, 450),
        ] {
            let name: &'static str = Box::leak(
                format!(
                    "reversed takes {reversed}, distill {a}, unknown x {repeats}, {steps} steps"
                )
                .into_boxed_str(),
            );
            variants.push((
                name,
                TrainConfig {
                    reversed_takes: reversed,
                    distill: a,
                    other_word_repeats: repeats,
                    steps,
                    ..d()
                },
            ));
        }
    }
    let variants = if args.iter().any(|a| a == "--grid") {
        let mut v = Vec::new();
        for first in [1usize, 0] {
            for (steps, lr, l2sp, bo, br) in [
                (300, 1e-3, 1e-2, 16, 16),
                (300, 1e-3, 1e-1, 16, 16),
                (150, 5e-4, 1e-2, 8, 24),
                (300, 5e-4, 1e-2, 8, 24),
                (600, 5e-4, 1e-2, 8, 24),
            ] {
                let name: &'static str = Box::leak(
                    format!("from {first}, {steps} steps, lr {lr}, l2sp {l2sp}, {bo}+{br}")
                        .into_boxed_str(),
                );
                v.push((
                    name,
                    TrainConfig {
                        first_trainable: first,
                        steps,
                        learning_rate: lr,
                        l2sp,
                        batch_owner: bo,
                        batch_replay: br,
                        ..d()
                    },
                ));
            }
        }
        v
    } else {
        variants
    };
    let test_families: Vec<String> = [
        "cmu-awb",
        "cstr-don",
        "espeak-en-029",
        "hibari-heart",
        "mbrola-de2",
        "mbrola-fr4",
        "mbrola-sw2",
        "pico-en-gb",
        "pico-en-us",
        "silence",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The val trial names its eval families (the validation ones and silence).
    let eval_families = meta.eval_families.clone().unwrap_or(test_families);
    // ADAPT_TRIAL_SEED: another seed for the noisy copies and training (default 1), to see
    // which differences between variants outlast the seed.
    let seed: u64 = std::env::var("ADAPT_TRIAL_SEED")
        .ok()
        .map(|s| s.parse().expect("ADAPT_TRIAL_SEED"))
        .unwrap_or(1);
    for family in &meta.families {
        let req = AdaptRequest {
            takes_dir: dir.join(family).join("takes"),
            state_dir: dir.join(family).join("state"),
            shipped_meta: shipped_meta.clone(),
            seed,
        };
        let t = Instant::now();
        let mut p = prepare(&req, 0, false).expect("prepare");
        let prep_s = t.elapsed().as_secs_f32();
        // Training sets by (noisy copies, reversed takes), made once per owner when a variant
        // first asks.
        let mut sets: HashMap<(usize, bool), Vec<Example>> = HashMap::new();
        sets.insert((0, false), p.train.clone());
        let (n_in, classes) = (p.shipped.layout.input_len(), p.shipped.meta.labels.len());
        let kws = classes - 2;
        // Keyword takes only, unless a variant names the other words; held-out keyword takes
        // only, so every row is measured on the same takes.
        let keywords_only = |set: &[Example]| -> Vec<Example> {
            set.iter().filter(|e| e.label < kws).cloned().collect()
        };
        let other_held: Vec<Example> = p.held.iter().filter(|e| e.label >= kws).cloned().collect();
        p.held = keywords_only(&p.held);
        let own = load_eval(&dir.join(format!("eval-{family}.bin")), n_in, classes);
        let unlike = load_eval(
            &dir.join(format!("eval-{family}-unlike.bin")),
            n_in,
            classes,
        );
        let others: Vec<(String, Vec<Example>)> = eval_families
            .iter()
            .filter(|f| *f != family)
            .map(|f| {
                (
                    f.to_string(),
                    load_eval(&dir.join(format!("eval-{f}.bin")), n_in, classes),
                )
            })
            .collect();
        let speech = load_eval(&dir.join("eval-asterisk-en.bin"), n_in, classes);
        let hours = meta.speech_seconds / 3600.0;
        let all_others: Vec<Example> = others.iter().flat_map(|(_, v)| v.clone()).collect();
        let other_acc = |net: &Net| {
            let (mut right, mut n) = (0.0, 0usize);
            for (_, set) in &others {
                right += accuracy(net, set) * set.len() as f32;
                n += set.len();
            }
            right / n as f32
        };
        let base = &p.shipped.net;
        println!(
            "\n## owner = {family} ({split} split, seed {seed}): {} training windows from the takes ({} of other words), {} held-out keyword takes (+{} other words), front end {prep_s:.2} s",
            p.train.len(),
            p.train.len() - keywords_only(&p.train).len(),
            p.held.len(),
            other_held.len()
        );
        println!("| variant | held-out takes | {family} noisy {split} (all) | same, keywords / rest | same: fixed / broken clips | same, unlike the takes | other {split} voices | other: fixed / broken | FA/h real speech | train s |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        println!(
            "| shipped | {} | {} | {} | - | {} | {} | - | {:.0} | - |",
            pct(accuracy(base, &p.held)),
            pct(accuracy(base, &own)),
            split_acc(base, &own, kws),
            pct(accuracy(base, &unlike)),
            pct(other_acc(base)),
            false_accepts(base, &speech, kws) as f64 / hours
        );
        for (name, cfg) in &variants {
            let owner = sets
                .entry((cfg.noisy_copies, cfg.reversed_takes))
                .or_insert_with(|| {
                    prepare(&req, cfg.noisy_copies, cfg.reversed_takes)
                        .expect("prepare")
                        .train
                });
            // Training only: the front end ran above.
            let t = Instant::now();
            let owner = if name.contains("keyword takes only") {
                keywords_only(owner)
            } else {
                weigh_unknown(owner, Some(kws), cfg.other_word_repeats)
            };
            let net = train(base, &owner, &p.shipped.replay, cfg, req.seed);
            // "blend a": the trained weights pulled back towards the shipped ones.
            let net = match name.split_once("blend ") {
                Some((_, a)) => blend(base, &net, a.parse().expect("blend alpha")),
                None => net,
            };
            let s = t.elapsed().as_secs_f32();
            println!(
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {s:.2} |",
                pct(accuracy(&net, &p.held)),
                pct(accuracy(&net, &own)),
                split_acc(&net, &own, kws),
                paired(base, &net, &own),
                pct(accuracy(&net, &unlike)),
                pct(other_acc(&net)),
                paired(base, &net, &all_others),
                false_accepts(&net, &speech, kws) as f64 / hours
            );
            // `--per-family`: where the other voices' changes are (diagnosis, not choice).
            if args.iter().any(|a| a == "--per-family") {
                for (f, set) in &others {
                    println!(
                        "|   other voice {f} | | {} -> {} | | {} |",
                        pct(accuracy(base, set)),
                        pct(accuracy(&net, set)),
                        paired(base, &net, set)
                    );
                }
            }
        }
    }
}

/// Wall time and peak RSS of the real `chatterbox adapt`, on one core (taskset -c 0).
fn cli_cost(dir: &Path, family: &str, shipped_meta: &Path) {
    let state = dir.join(family).join("state-cli");
    let _ = std::fs::remove_dir_all(&state);
    let cfg = dir.join(family).join("config.toml");
    std::fs::write(
        &cfg,
        format!("[keywords]\nstate_dir = {}\n", toml_string(&state)),
    )
    .expect("config");
    let t = Instant::now();
    let out = std::process::Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_chatterbox"), "-c"])
        .arg(&cfg)
        .args(["adapt", "--takes"])
        .arg(dir.join(family).join("takes"))
        .arg("--model")
        .arg(shipped_meta)
        .output()
        .expect("run chatterbox adapt");
    let wall = t.elapsed().as_secs_f32();
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!(
        "\n## `chatterbox adapt` ({family}, 8 words x 6 training takes, one core): {wall:.2} s wall, {:.2} s user+sys CPU, peak RSS {:.1} MB (exit {})\n{}",
        ru.ru_utime.tv_sec as f64 + ru.ru_utime.tv_usec as f64 * 1e-6 + ru.ru_stime.tv_sec as f64 + ru.ru_stime.tv_usec as f64 * 1e-6,
        ru.ru_maxrss as f64 / 1024.0,
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

fn toml_string(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// eval-meta.json needs two fields; a few lines instead of a JSON dependency.
mod serde_json_lite {
    use std::path::Path;

    pub struct Meta {
        pub families: Vec<String>,
        /// Written by the val trial only; the test trial's are listed in the bench.
        pub eval_families: Option<Vec<String>>,
        pub speech_seconds: f64,
    }

    fn list(text: &str, key: &str) -> Option<Vec<String>> {
        let start = text.find(&format!("\"{key}\""))?;
        let open = start + text[start..].find('[')?;
        let close = open + text[open..].find(']')?;
        Some(
            text[open + 1..close]
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    pub fn read(path: &Path) -> Meta {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run python -m kws.adapt_trial first",
                path.display()
            )
        });
        let families = list(&text, "families").expect("families");
        let at = text.find("\"speech_seconds\"").expect("speech_seconds");
        let rest = &text[at + 16..];
        let rest = rest.trim_start_matches([':', ' ']);
        let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
        Meta {
            families,
            eval_families: list(&text, "eval_families"),
            speech_seconds: rest[..end].trim().parse().expect("seconds"),
        }
    }
}
