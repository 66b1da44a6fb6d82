//! The command line: `clap` definitions and one small function per subcommand.
//! The library does the work; this file only parses, loads the config and dispatches.

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use crossbeam_channel::{select, unbounded};

use crate::audio::alsa_backend::AlsaBackend;
use crate::audio::library::ClipWriter;
use crate::audio::player::{spawn_player, PlayOutcome, PlayerCommand, PlayerConfig, PlayerReport};
use crate::audio::wav::{open_clip, Converter};
use crate::audio::{AudioBackend, PcmFormat};
use crate::clock::{Clock, ManualClock, RealClock};
use crate::config::Config;
use crate::hw::button::{ButtonPin, SimPin};
use crate::hw::display::{open_or_null, render_png_scaled, Display, NullDisplay};
use crate::hw::gpio::{RppalButton, RppalLeds};
use crate::hw::leds::{Led, LedPins, PrintLeds};
use crate::instance::{InstanceLock, SUPERVISED_ENV};
use crate::kws::listener::{Hop, Recognizer, RecognizerConfig};
use crate::runtime::sim::{describe, parse_line, SimButton, SimCommand, SimDriver, SimError};
use crate::runtime::{self, Hardware, Options};
use crate::supervise::{install_panic_exit, supervise, Ending, RestartPolicy, Supervised};
use crate::ui::{sample_screen, sample_screens, DisplaySize};

/// Firmware for a Raspberry Pi + Codec Zero talking toy.
#[derive(Debug, Parser)]
#[command(name = "chatterbox", version, about, long_about = None)]
pub struct Cli {
    /// Config file (TOML). Without it, built-in defaults for the Codec Zero are used.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The appliance: GPIO button and LEDs, OLED, microphone and speaker (on a Pi).
    Run {
        /// Run even as root (normally refused: the toy runs as its own user).
        #[arg(long)]
        allow_root: bool,
    },
    /// Start `run` and keep it running: restart it with a back-off when it fails; after too
    /// many failures in a short time, red LED on and a try every 10 minutes (what cron and
    /// systemd start at boot).
    Supervise(SuperviseArgs),
    /// The same program driven from the keyboard or a script; LEDs and screens print.
    Sim(SimArgs),
    /// List sound devices with their rates, channels and formats.
    Devices,
    /// Record from the microphone into a WAV file (like `arecord`).
    Record {
        /// Length in seconds.
        #[arg(long, short = 's', default_value_t = 5.0)]
        seconds: f32,
        /// Output WAV file (written atomically).
        file: PathBuf,
    },
    /// Play a WAV file on the speaker (like `aplay`); any PCM WAV works.
    Play { file: PathBuf },
    /// Print the voice commands heard in a WAV file (any rate/channels) or the microphone.
    Listen {
        /// WAV file to stream through the recognizer; without it, the microphone.
        file: Option<PathBuf>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Print every hop's top scores, not only detections.
        #[arg(long)]
        all: bool,
        /// Stop after this many seconds of microphone audio (default: until Ctrl-C).
        #[arg(long)]
        seconds: Option<f32>,
    },
    /// Record the owner saying each keyword, then the model's words that are not commands
    /// (`[adapt] other_words`, unless --words) once each, for adapting the model to their voice.
    Enroll {
        /// Folder for the takes, in the Speech Commands layout
        /// (`scripts/train_kws.py --speech-commands DIR` trains on it). Default:
        /// `<state>/enroll`, where the toy keeps takes taught with the button too.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Takes per word.
        #[arg(long, default_value_t = 3)]
        takes: usize,
        /// Words to record (default: every keyword the model knows).
        #[arg(long, value_delimiter = ',')]
        words: Vec<String>,
        /// Do not adapt the model to the takes afterwards (`chatterbox adapt` does it later).
        #[arg(long)]
        no_adapt: bool,
    },
    /// Adapt the keyword model to the owner's voice from their takes (what `enroll` records);
    /// switches to it only if it is better on the held-out takes.
    Adapt {
        /// Folder of takes, `DIR/<word>/*.wav` with `DIR/testing_list.txt` (as `enroll` writes).
        /// Default: `<state>/enroll`, where `enroll` and the button gesture put them.
        #[arg(long)]
        takes: Option<PathBuf>,
        /// Seed of the trainer (same takes and seed: same model).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Go back to the model in use before the last adaptation (the shipped one if none).
        #[arg(long)]
        undo: bool,
        /// The embedding model's kws.toml to adapt (default: keywords.model if it can be
        /// adapted, else the shipped models/embedding/kws.toml).
        #[arg(long, value_name = "TOML")]
        model: Option<PathBuf>,
    },
    /// Clip accuracy of the keyword model on a folder of `<word>__*.wav` clips.
    Evaluate {
        /// Folder of labelled clips, e.g. the one `enroll` filled.
        dir: PathBuf,
        /// Only the takes listed in DIR/testing_list.txt (never trained on).
        #[arg(long)]
        held_out: bool,
    },
    /// Find the Codec Zero, apply its mic + speaker mixer profile and make it ALSA's default.
    SetupAudio(crate::setup_audio::SetupOptions),
    /// Render one of the OLED screens to a PNG.
    Screenshot {
        /// Screen name; `--screen list` prints them.
        #[arg(long, default_value = "idle")]
        screen: String,
        /// Panel size: 128x64 or 128x32.
        #[arg(long, default_value = "128x64")]
        size: String,
        /// Pixel scale (1 = the panel's own 128 pixels across).
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Output PNG.
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Read commands from this file instead of the keyboard.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Let the script's clock jump instead of waiting (`hold 20` takes no time).
    #[arg(long)]
    pub virtual_time: bool,
    /// Seed for the random clip choice, for repeatable sessions.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run even as root (normally refused: the toy runs as its own user).
    #[arg(long)]
    pub allow_root: bool,
}

#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// More failures than this within --window-s and the supervisor gives up for a while:
    /// red LED on, one try every --retry-after-s.
    #[arg(long, default_value_t = 5)]
    pub max_crashes: usize,
    /// After giving up, try again this often (seconds).
    #[arg(long, default_value_t = 600)]
    pub retry_after_s: u64,
    /// The window for --max-crashes, in seconds.
    #[arg(long, default_value_t = 600)]
    pub window_s: u64,
    /// Wait before the first restart in ms; doubled per further failure, at most 60 s.
    #[arg(long, default_value_t = 1000)]
    pub first_backoff_ms: u64,
    /// Run even as root (passed on to `run`).
    #[arg(long)]
    pub allow_root: bool,
    /// What to supervise instead of `run` (tests supervise a scripted `sim`).
    #[arg(last = true, hide = true)]
    pub child: Vec<std::ffi::OsString>,
}

/// Why the daemon will not start as root.
#[derive(Debug, thiserror::Error)]
#[error("chatterbox will not run as root: it records a microphone and reads files copied onto the SD card, so it runs as its own user (scripts/install.sh creates `chatterbox`; `sudo -u chatterbox chatterbox ...`). Pass --allow-root to run as root anyway")]
pub struct RootRefused;

/// The root check for `run` and `sim`, pure so it can be tested as any user.
pub fn refuse_root(euid: u32, allowed: bool) -> Result<(), RootRefused> {
    if euid == 0 && !allowed {
        return Err(RootRefused);
    }
    if euid == 0 {
        log::warn!("running as root (--allow-root)");
    }
    Ok(())
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the message
/// above already quotes (our error types put their cause in the message).
fn render_error(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .format_target(false)
        .try_init();
}

fn load_config(path: Option<&Path>, command: &Command) -> Result<Config> {
    let mut cfg = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let missing = cfg.locate_shipped_files(&crate::shipped::SearchPlaces::for_this_program());
    // What the toy hears with: the owner's adapted model when there is a whole one. `run`
    // decides that itself (`runtime::start_with`), keeping the configured model both to fall
    // back to and for the on-toy trainer to start from.
    let owner = match command {
        Command::Sim(_) | Command::Listen { .. } | Command::Evaluate { .. } => {
            crate::adapt::owner::resolve(&cfg.state_dir())
        }
        _ => None,
    };
    if let Some(owner) = &owner {
        cfg.keywords.model = owner.clone();
    }
    for missing in missing {
        if owner.is_some() && missing.file.config_key == "keywords.model" {
            continue;
        }
        match (command, missing.file.config_key) {
            // These exist to run the model.
            (
                Command::Listen { .. } | Command::Enroll { .. } | Command::Evaluate { .. },
                "keywords.model",
            ) => return Err(missing.into()),
            // The toy works without voice commands or cue sounds (the button must always
            // work); it says why they are off.
            (Command::Run { .. } | Command::Sim(_), "keywords.model") if cfg.keywords.enabled => {
                log::warn!("voice commands are off: {missing}");
                cfg.keywords.enabled = false;
            }
            (Command::Run { .. } | Command::Sim(_), "library.sounds_dir") => {
                log::warn!("cue sounds are silent: {missing}");
            }
            _ => {}
        }
    }
    Ok(cfg)
}

fn dispatch(cli: Cli) -> Result<()> {
    let cfg = load_config(cli.config.as_deref(), &cli.command)?;
    match cli.command {
        Command::Run { allow_root } => {
            refuse_root(effective_uid(), allow_root)?;
            install_panic_exit();
            // A supervised child runs under its supervisor's lock.
            let _lock = match std::env::var_os(SUPERVISED_ENV) {
                Some(_) => None,
                None => Some(InstanceLock::acquire(&InstanceLock::default_path())?),
            };
            run(&cfg)
        }
        Command::Supervise(args) => {
            refuse_root(effective_uid(), args.allow_root)?;
            supervise_toy(&cfg, cli.config.as_deref(), cli.verbose, cli.quiet, &args)
        }
        Command::Sim(args) => {
            refuse_root(effective_uid(), args.allow_root)?;
            install_panic_exit();
            sim(&cfg, &args)
        }
        Command::Devices => {
            print!(
                "{}",
                crate::audio::devices::render_report(&crate::audio::devices::list_devices())
            );
            Ok(())
        }
        Command::Record { seconds, file } => record(&cfg, seconds, &file),
        Command::Play { file } => play(&cfg, &file),
        Command::Listen {
            file,
            json,
            all,
            seconds,
        } => listen(&cfg, file.as_deref(), json, all, seconds),
        Command::Enroll {
            dir,
            takes,
            words,
            no_adapt,
        } => {
            let dir = dir.unwrap_or_else(|| takes_dir(&cfg));
            enroll(&cfg, &dir, takes, words)?;
            if no_adapt {
                return Ok(());
            }
            adapt(&cfg, &dir, 1, None).with_context(|| {
                format!(
                    "the takes are saved in {}, but adapting to them failed",
                    dir.display()
                )
            })
        }
        Command::Adapt {
            takes,
            seed,
            undo,
            model,
        } => {
            if undo {
                let outcome = crate::adapt::undo(&cfg.state_dir())?;
                println!(
                    "{}",
                    match outcome {
                        crate::adapt::UndoOutcome::RestoredPrevious =>
                            "restored the owner model in use before the last adaptation",
                        crate::adapt::UndoOutcome::BackToShipped =>
                            "removed the owner model: the configured (shipped) model is in use again",
                        crate::adapt::UndoOutcome::NothingToUndo =>
                            "there is no owner model: the configured (shipped) model is in use",
                    }
                );
                return Ok(());
            }
            let takes = takes.unwrap_or_else(|| takes_dir(&cfg));
            adapt(&cfg, &takes, seed, model)
        }
        Command::Evaluate { dir, held_out } => {
            let meta = crate::kws::meta::KwsMeta::load(&cfg.keywords.model)?;
            let mut model = crate::kws::front_end::load_classifier(&meta)?;
            let which = if held_out {
                crate::kws::evaluate::Clips::HeldOut
            } else {
                crate::kws::evaluate::Clips::All
            };
            let eval = crate::kws::evaluate::evaluate_dir(&meta, &mut model, &dir, which)?;
            print!("{}", eval.render());
            Ok(())
        }
        Command::SetupAudio(opts) => {
            print!("{}", crate::setup_audio::run(opts)?);
            Ok(())
        }
        Command::Screenshot {
            screen,
            size,
            scale,
            out,
        } => screenshot(&screen, &size, scale, out.as_deref()),
    }
}

fn run(cfg: &Config) -> Result<()> {
    let button = RppalButton::new(cfg.button.pin)?;
    let leds = RppalLeds::new(cfg.leds.green_pin, cfg.leds.red_pin)?;
    let size = DisplaySize::parse(&cfg.display.size).unwrap_or(DisplaySize::W128H64);
    let mut display: Box<dyn Display> = if cfg.display.enabled {
        open_or_null(cfg.display.i2c_bus, cfg.display.address, size)
    } else {
        Box::new(NullDisplay::silent())
    };
    let hw = Hardware {
        audio: Arc::new(AlsaBackend),
        button: Some(Box::new(button)),
        leds: Box::new(leds),
        display: Box::new(move |screen| display.show(screen)),
        display_refresh: Some(crate::hw::display::REFRESH_EVERY),
        clock: Arc::new(RealClock::new()),
    };
    let app = runtime::start_with(cfg, hw, Options::default(), Some(enrollment_setup(cfg)))?;
    let signals = signal_channel()?;
    let _ = signals.recv();
    app.shutdown();
    Ok(())
}

/// Where takes live unless told otherwise: `<state>/enroll`, the folder the button gesture
/// fills too, so `chatterbox adapt` over SSH finds what was taught with the button.
fn takes_dir(cfg: &Config) -> PathBuf {
    runtime::enroller::enroll_dir(&cfg.state_dir())
}

/// What `run` needs to teach itself its owner's voice (the double-press-and-hold gesture):
/// the takes go to `<state>/enroll/`, and `chatterbox adapt`'s trainer learns from them on
/// the enroller thread, starting from the shipped speech-embedding model.
fn enrollment_setup(cfg: &Config) -> runtime::enroller::EnrollmentSetup {
    let state_dir = cfg.state_dir();
    let stop = runtime::adapter_glue::StopFlag::default();
    let mut other_words = Vec::new();
    let adapter: Box<dyn runtime::adapter_glue::VoiceAdapter> = match adapt_source(cfg, None) {
        Ok(shipped_meta) => {
            other_words = other_words_of(&shipped_meta);
            let state = state_dir.clone();
            Box::new(runtime::adapter_glue::ClosureAdapter::new(
                move |takes_dir, stop| {
                    crate::adapt::adapt_unless(
                        &crate::adapt::AdaptRequest {
                            takes_dir: takes_dir.to_path_buf(),
                            state_dir: state.clone(),
                            shipped_meta: shipped_meta.clone(),
                            seed: 1,
                        },
                        &crate::adapt::trainer::TrainConfig::default(),
                        &|stage| match stage {
                            crate::adapt::Stage::Working => !stop.requested(),
                            crate::adapt::Stage::Switching => stop.claim_switch(),
                        },
                    )
                    .map(|r| crate::core::AdaptOutcome {
                        // What the toy was using: an earlier adaptation, else the shipped head.
                        before: r.in_use.unwrap_or(r.before),
                        after: r.after,
                        switched: r.switched,
                    })
                    .map_err(|e| e.to_string())
                },
            ))
        }
        Err(e) => {
            // The takes are still kept; the toy says it cannot learn and why.
            log::warn!("teaching the toy a voice will keep the takes but cannot learn: {e:#}");
            Box::new(runtime::adapter_glue::CannotLearn(format!(
                "cannot learn on the toy: {e:#}"
            )))
        }
    };
    runtime::enroller::EnrollmentSetup {
        owner_model: state_dir
            .join(crate::adapt::owner::CURRENT)
            .join("kws.toml"),
        state_dir,
        takes: crate::core::EnrollmentConfig::default().takes,
        words: Vec::new(),
        other_words,
        adapter,
        stop,
    }
}

/// The words besides the keywords that adapting `meta` wants the owner to say
/// (`[adapt] other_words`); none when the contract cannot be read (adapting then says why).
fn other_words_of(meta: &Path) -> Vec<String> {
    crate::kws::meta::KwsMeta::load(meta)
        .ok()
        .and_then(|m| m.adapt)
        .map(|a| a.other_words)
        .unwrap_or_default()
}

fn supervise_toy(
    cfg: &Config,
    config: Option<&Path>,
    verbose: u8,
    quiet: bool,
    args: &SuperviseArgs,
) -> Result<()> {
    let lock = InstanceLock::acquire(&InstanceLock::default_path())?;
    log::info!("supervisor: holding {}", lock.path().display());
    let program = std::env::current_exe().context("finding the chatterbox binary to start")?;
    let mut child_args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(config) = config {
        child_args.push("--config".into());
        child_args.push(config.into());
    }
    for _ in 0..verbose {
        child_args.push("-v".into());
    }
    if quiet {
        child_args.push("-q".into());
    }
    if args.child.is_empty() {
        child_args.push("run".into());
        if args.allow_root {
            child_args.push("--allow-root".into());
        }
    } else {
        child_args.extend(args.child.iter().cloned());
    }
    let policy = RestartPolicy {
        first_backoff: std::time::Duration::from_millis(args.first_backoff_ms),
        max_crashes: args.max_crashes,
        window: std::time::Duration::from_secs(args.window_s),
        ..RestartPolicy::default()
    };
    let signals = signal_channel()?;
    // Held while the supervisor has given up, so the red LED stays on; dropped (the pins
    // handed back) before the toy is tried again.
    let mut fault_leds: Option<RppalLeds> = None;
    let program = program.into_os_string();
    let ending = supervise(
        &Supervised {
            program: &program,
            args: &child_args,
            policy: &policy,
            retry_after_giving_up: std::time::Duration::from_secs(args.retry_after_s),
            shared_fd: Some(lock.as_raw_fd()),
        },
        &signals,
        &mut |on| {
            if !on {
                fault_leds = None;
                return;
            }
            if fault_leds.is_some() {
                return;
            }
            match RppalLeds::new(cfg.leds.green_pin, cfg.leds.red_pin).and_then(|mut leds| {
                leds.set(Led::Green, false)?;
                leds.set(Led::Red, true).map(|()| leds)
            }) {
                Ok(leds) => fault_leds = Some(leds),
                Err(e) => log::error!("supervisor: could not light the red LED: {e}"),
            }
        },
    );
    drop(fault_leds);
    match ending {
        Ending::Stopped => Ok(()),
        Ending::StoppedWhileFailing { crashes } => {
            bail!("stopped while the toy was failing ({crashes} failures); see the log above")
        }
    }
}

fn screenshot(name: &str, size: &str, scale: u32, out: Option<&Path>) -> Result<()> {
    let names: Vec<&str> = sample_screens().iter().map(|(n, _)| *n).collect();
    if name == "list" {
        println!("{}", names.join("\n"));
        return Ok(());
    }
    let screen = sample_screen(name).with_context(|| {
        format!(
            "no screen named '{name}'; choose one of: {}",
            names.join(", ")
        )
    })?;
    let size =
        DisplaySize::parse(size).with_context(|| format!("--size {size}: use 128x64 or 128x32"))?;
    let Some(out) = out else {
        bail!("give an output file, e.g. `chatterbox screenshot --screen {name} {name}.png`");
    };
    render_png_scaled(&screen, size, scale, out)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Reads lines on a thread so the main loop can also watch for Ctrl-C.
fn spawn_line_reader(
    script: Option<PathBuf>,
) -> Result<crossbeam_channel::Receiver<std::io::Result<String>>> {
    let (tx, rx) = unbounded();
    let reader: Box<dyn BufRead + Send> = match script {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(&p)
                .with_context(|| format!("cannot open script {}", p.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            for line in reader.lines() {
                if tx.send(line).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}

fn sim(cfg: &Config, args: &SimArgs) -> Result<()> {
    // A script is checked whole before anything starts: a typo on line 9 should not
    // surface after a 20 s hold.
    if let Some(path) = &args.script {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read script {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            parse_line(line, i + 1).with_context(|| format!("script {}", path.display()))?;
        }
    }
    let (clock, button, pin): (Arc<dyn Clock>, SimButton, Option<Box<dyn ButtonPin>>) =
        if args.virtual_time {
            let c = ManualClock::new();
            (Arc::new(c.clone()), SimButton::Virtual(c), None)
        } else {
            let pin = SimPin::new();
            (
                Arc::new(RealClock::new()),
                SimButton::Real(pin.clone()),
                Some(Box::new(pin)),
            )
        };
    let hw = Hardware {
        audio: Arc::new(AlsaBackend),
        button: pin,
        leds: Box::new(PrintLeds::new(std::io::stdout())),
        display: Box::new(|s| {
            println!("[screen] {}", describe(s));
            Ok(())
        }),
        display_refresh: None,
        clock,
    };
    let app = runtime::start(cfg, hw, Options { seed: args.seed })?;
    let signals = signal_channel()?;
    let lines = spawn_line_reader(args.script.clone())?;
    let interactive = args.script.is_none();
    if interactive {
        println!("chatterbox sim: type press, release, hold 12, wait 2, say go, status, quit");
    }
    let mut driver = SimDriver::new(app.control(), button, signals.clone());
    let mut n = 0;
    let outcome: Result<()> = loop {
        let line = select! {
            recv(lines) -> l => l,
            recv(signals) -> _ => break Ok(()),
        };
        let Ok(line) = line else {
            // End of input: let the last sound or recording finish.
            break match driver.settled() {
                Ok(_) | Err(SimError::Interrupted) => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        n += 1;
        let line = line.context("reading commands")?;
        let cmd = match parse_line(&line, n) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        if !interactive {
            println!("> {}", line.trim());
        }
        match driver.run(&cmd) {
            Ok(true) => {}
            Ok(false) | Err(SimError::Interrupted) => break Ok(()),
            Err(e) => break Err(e.into()),
        }
        if cmd == SimCommand::Quit {
            break Ok(());
        }
    };
    app.shutdown();
    outcome
}

/// Prints one hop or detection, as text or JSON.
fn print_hop(
    out: &mut impl Write,
    hop: &Hop<'_>,
    labels: &[String],
    json: bool,
    all: bool,
) -> std::io::Result<()> {
    let t = hop.end.as_secs_f64();
    if let Some(d) = hop.detection {
        return if json {
            writeln!(
                out,
                "{{\"time\":{t:.3},\"word\":\"{}\",\"confidence\":{:.3}}}",
                d.word, d.confidence
            )
        } else {
            writeln!(out, "{t:8.3} s  {:<8} {:.2}", d.word, d.confidence)
        };
    }
    if !all {
        return Ok(());
    }
    let mut top: Vec<(usize, f32)> = hop
        .scores
        .map(|s| s.iter().copied().enumerate().collect())
        .unwrap_or_default();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(3);
    if json {
        let scores: Vec<String> = top
            .iter()
            .map(|(i, p)| format!("\"{}\":{p:.3}", labels[*i]))
            .collect();
        writeln!(
            out,
            "{{\"time\":{t:.3},\"dbfs\":{:.1},\"scores\":{{{}}}}}",
            hop.rms_dbfs,
            scores.join(",")
        )
    } else if top.is_empty() {
        writeln!(
            out,
            "{t:8.3} s  (quiet, {:.0} dBFS: model skipped)",
            hop.rms_dbfs
        )
    } else {
        let scores: Vec<String> = top
            .iter()
            .map(|(i, p)| format!("{} {p:.2}", labels[*i]))
            .collect();
        writeln!(out, "{t:8.3} s  {}", scores.join("  "))
    }
}

fn listen(
    cfg: &Config,
    file: Option<&Path>,
    json: bool,
    all: bool,
    seconds: Option<f32>,
) -> Result<()> {
    if let Some(s) = seconds {
        if !(s > 0.0 && s <= 86_400.0) {
            bail!("--seconds {s}: must be more than 0 and at most 86400");
        }
        if file.is_some() {
            bail!("--seconds bounds the microphone; a file is listened to whole");
        }
    }
    let mut recognizer = Recognizer::load(
        &cfg.keywords.model,
        &RecognizerConfig::from_config(&cfg.keywords),
    )?;
    let labels = recognizer.labels().to_vec();
    // A reader that goes away (`chatterbox listen … | head`) ends the listening quietly, as
    // for any Unix tool; another write error is reported.
    let mut out = std::io::stdout().lock();
    let mut write_error: Option<std::io::Error> = None;
    let mut print = |hop: Hop<'_>, error: &mut Option<std::io::Error>| {
        if error.is_none() {
            *error = print_hop(&mut out, &hop, &labels, json, all).err();
        }
    };
    if let Some(path) = file {
        // Streamed 20 ms at a time, as the microphone delivers it: memory stays flat
        // however long the file (decoding it whole took ~1 GB per 16 minutes at 48 kHz
        // stereo).
        let stream = open_clip(path, 24.0 * 3600.0)?;
        let format = PcmFormat {
            rate: stream.rate(),
            channels: stream.channels(),
        };
        let mut converter = Converter::from_source(Box::new(stream), format)?;
        let chunk_frames = (format.rate as usize / 50).max(1);
        let mut block = Vec::with_capacity(chunk_frames * usize::from(format.channels));
        loop {
            block.clear();
            if converter.next_block(chunk_frames, 1.0, &mut block)? == 0 {
                break;
            }
            recognizer.push_with(&block, format, &mut |h| print(h, &mut write_error))?;
            if write_error.is_some() {
                break;
            }
        }
        recognizer.finish(&mut |h| print(h, &mut write_error))?;
        return output_result(write_error);
    }
    let signals = signal_channel()?;
    let mut stream = AlsaBackend.open_capture(&cfg.audio.capture_device, cfg.capture_format())?;
    let format = stream.format();
    log::info!(
        "listening on '{}' ({format}); Ctrl-C to stop",
        cfg.audio.capture_device
    );
    let mut buf = vec![0i16; (format.rate as usize / 50).max(1) * usize::from(format.channels)];
    let limit = seconds.map(|s| (f64::from(s) * f64::from(format.rate)) as u64);
    let mut frames_read = 0u64;
    while signals.try_recv().is_err() && limit.is_none_or(|l| frames_read < l) {
        let frames = stream.read(&mut buf)?;
        frames_read += frames as u64;
        recognizer.push_with(
            &buf[..frames * usize::from(format.channels)],
            format,
            &mut |h| print(h, &mut write_error),
        )?;
        if write_error.is_some() {
            break;
        }
    }
    output_result(write_error)
}

/// Ok for no error or a closed pipe (the reader has what it wanted); the error otherwise.
fn output_result(error: Option<std::io::Error>) -> Result<()> {
    match error {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}

fn enroll(cfg: &Config, dir: &Path, takes: usize, words: Vec<String>) -> Result<()> {
    use crate::enroll::{make_take, save_take, EnrollError};
    use crate::kws::meta::{is_keyword, KwsMeta, UNKNOWN};
    if !(1..=50).contains(&takes) {
        bail!("--takes {takes}: choose 1 to 50");
    }
    let meta = KwsMeta::load(&cfg.keywords.model)?;
    let known: Vec<String> = meta
        .labels
        .iter()
        .filter(|l| is_keyword(l))
        .cloned()
        .collect();
    // The words that are not commands go with the full set only (a few keywords recorded
    // again need no more of them); with `--no-adapt` too, since `adapt` comes later.
    let other_words = if words.is_empty() {
        adapt_source(cfg, None)
            .map(|m| other_words_of(&m))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let words = if words.is_empty() {
        known.clone()
    } else {
        words
    };
    for w in &words {
        if !known.contains(w) {
            return Err(EnrollError::UnknownWord {
                word: w.clone(),
                known: known.join(", "),
            }
            .into());
        }
    }
    let mut stream = AlsaBackend.open_capture(&cfg.audio.capture_device, cfg.capture_format())?;
    let format = stream.format();
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let ch = usize::from(format.channels);
    let per_take = (format.rate as usize) * 2 * ch; // 2 s to say one word
                                                    // Read in 20 ms periods, as the device delivers them.
    let mut period = vec![0i16; (format.rate as usize / 50).max(1) * ch];
    let mut buf = Vec::with_capacity(per_take);
    // (what to say, the folder it goes to, take n of m): every keyword `takes` times, then
    // the words that are not commands once each, as the toy asks for them.
    let mut plan: Vec<(String, String, usize, usize)> = Vec::new();
    for word in &words {
        plan.extend((1..=takes).map(|n| (word.clone(), word.clone(), n, takes)));
    }
    for (i, word) in other_words.iter().enumerate() {
        plan.push((word.clone(), UNKNOWN.to_string(), i + 1, other_words.len()));
    }
    let mut saved = 0;
    let mut refused = 0;
    let mut at = 0;
    while let Some((say, folder, n, of)) = plan.get(at) {
        if folder == UNKNOWN && *n == 1 && refused == 0 {
            println!("Now {of} words that are not commands, once each, so it learns what the rest of your speech sounds like:");
        }
        println!("Say \"{say}\" now ({n}/{of})…");
        buf.clear();
        while buf.len() < per_take {
            let frames = stream.read(&mut period)?;
            buf.extend_from_slice(&period[..frames * ch]);
        }
        buf.truncate(per_take);
        match make_take(&buf, format) {
            Ok(take) => {
                let path = save_take(dir, folder, &stamp, *n, &take)?;
                println!("  saved {}", path.display());
                saved += 1;
                at += 1;
                refused = 0;
            }
            // The keywords are all kept by now: adapt without the remaining other words
            // rather than lose the session.
            Err(EnrollError::Refused(why)) if refused >= 4 && folder == UNKNOWN => {
                println!(
                    "  {}: {why}. Skipping the remaining other words.",
                    why.short()
                );
                break;
            }
            Err(e @ EnrollError::Refused(_)) if refused >= 4 => return Err(e.into()),
            Err(EnrollError::Refused(why)) => {
                refused += 1;
                println!("  {}: {why}. Again:", why.short());
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "{saved} takes in {}. How well the model knows them: chatterbox evaluate {}\n\
         Retrain with them (on a PC): scripts/train_kws.py --speech-commands {}",
        dir.display(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// The embedding model `adapt` starts from: `--model`, else `keywords.model` if it carries an
/// `[adapt]` table, else the shipped `models/embedding/kws.toml`.
fn adapt_source(cfg: &Config, explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let configured = &cfg.keywords.model;
    if !configured.as_os_str().is_empty() {
        if let Ok(meta) = crate::kws::meta::KwsMeta::load(configured) {
            if meta.adapt.is_some() {
                return Ok(configured.clone());
            }
        }
    }
    Ok(crate::shipped::SearchPlaces::for_this_program().find(crate::shipped::EMBEDDING_MODEL)?)
}

fn adapt(cfg: &Config, takes: &Path, seed: u64, model: Option<PathBuf>) -> Result<()> {
    let req = crate::adapt::AdaptRequest {
        takes_dir: takes.to_path_buf(),
        state_dir: cfg.state_dir(),
        shipped_meta: adapt_source(cfg, model)?,
        seed,
    };
    println!(
        "adapting {} to the takes in {} …",
        req.shipped_meta.display(),
        takes.display()
    );
    let r = crate::adapt::adapt(&req)?;
    let in_use = r
        .in_use
        .map(|u| format!(", owner model in use {:.1} %", 100.0 * u))
        .unwrap_or_default();
    use crate::adapt::TriedJoin;
    let pct = |a: f32| format!("{:.1} %", 100.0 * a);
    let how = match (r.join(), r.tried) {
        (TriedJoin::Either, Some(t)) => format!(
            " beside the shipped head, each heard at its own threshold (alone {}, the larger answer at one threshold {})",
            pct(t.alone),
            pct(t.beside)
        ),
        (TriedJoin::Max, Some(t)) => format!(
            " beside the shipped head, the larger answer winning (alone {}{})",
            pct(t.alone),
            t.either
                .map(|e| format!(", each at its own threshold {}", pct(e)))
                .unwrap_or_default()
        ),
        (TriedJoin::Alone, Some(t)) => format!(
            " alone (beside the shipped head {}{})",
            pct(t.beside),
            t.either
                .map(|e| format!(", or each at its own threshold {}", pct(e)))
                .unwrap_or_default()
        ),
        _ => String::new(),
    };
    println!(
        "held-out takes ({}): shipped model {:.1} %{in_use}, adapted {:.1} %{how} ({:.1} s)",
        r.held_out,
        100.0 * r.before,
        100.0 * r.after,
        r.seconds
    );
    let own = r.own_thresholds.as_ref().map(|words| {
        words
            .iter()
            .map(|(w, t)| format!("{w} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    match (r.threshold, own, &r.calibration) {
        (Some(t), Some(own), Some(m)) => println!(
            "thresholds: the shipped head needs {t}, the adapted head {own}: matched on {:.0} min of non-keyword audio (the shipped calibration stream), where the owner model accepts {} times and the shipped model {} times",
            m.stream.as_secs_f64() / 60.0,
            m.owner_events,
            m.shipped_events
        ),
        (Some(t), None, Some(m)) if m.reached() => println!(
            "detector threshold {t}: matched on {:.0} min of non-keyword audio (the shipped calibration stream), where the owner model accepts {} times and the shipped model {} times",
            m.stream.as_secs_f64() / 60.0,
            m.owner_events,
            m.shipped_events
        ),
        (Some(t), None, Some(m)) => println!(
            "detector threshold {t}, the strictest tried: even there the owner model accepts {} times on the shipped calibration stream ({:.0} min of non-keyword audio), the shipped model {} times",
            m.owner_events,
            m.stream.as_secs_f64() / 60.0,
            m.shipped_events
        ),
        (Some(t), _, None) => println!(
            "detector threshold {t} (the shipped one made stricter; the model folder has no calibration stream)"
        ),
        (None, ..) => {}
    }
    if r.switched {
        println!(
            "switched to the adapted model {} (`chatterbox adapt --undo` goes back)",
            req.state_dir.join(crate::adapt::owner::CURRENT).display()
        );
    } else {
        println!("the adapted model is not better on the held-out takes: kept the model in use");
    }
    Ok(())
}

/// SIGINT/SIGTERM as a channel, so a main loop can select on it.
pub fn signal_channel() -> Result<crossbeam_channel::Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the SIGINT/SIGTERM handler")?;
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                log::info!("signal {s}: shutting down");
                if tx.send(s).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}

fn record(cfg: &Config, seconds: f32, file: &Path) -> Result<()> {
    if !(seconds > 0.0 && seconds <= 3600.0) {
        bail!("--seconds {seconds}: must be more than 0 and at most 3600");
    }
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", file.display()))?;
    let format = cfg.capture_format();
    let backend = AlsaBackend;
    let device = &cfg.audio.capture_device;
    let mut stream = backend.open_capture(device, format)?;
    let got = stream.format();
    let mut writer = ClipWriter::begin(&dir, got)?;
    let total = (f64::from(seconds) * f64::from(got.rate)).round() as u64;
    let mut buf = vec![0i16; (got.rate as usize / 50).max(1) * usize::from(got.channels)];
    log::info!(
        "recording {seconds} s from '{device}' ({got}) into {}",
        file.display()
    );
    while writer.frames() < total {
        let frames = stream.read(&mut buf)?;
        let take = (total - writer.frames()).min(frames as u64) as usize;
        writer.write(&buf[..take * usize::from(got.channels)])?;
    }
    let path = writer.commit(name)?;
    println!("wrote {} ({seconds} s, {got})", path.display());
    Ok(())
}

fn play(cfg: &Config, file: &Path) -> Result<()> {
    let (cmd_tx, cmd_rx) = unbounded();
    let (rep_tx, rep_rx) = unbounded();
    let handle = spawn_player(
        Arc::new(AlsaBackend),
        PlayerConfig {
            device: cfg.audio.playback_device.clone(),
            preferred: PcmFormat {
                rate: cfg.audio.rate,
                channels: cfg.audio.channels,
            },
            max_clip_seconds: cfg.audio.max_clip_seconds,
            idle_close: None,
        },
        cmd_rx,
        rep_tx,
    )?;
    cmd_tx.send(PlayerCommand::SetGain(
        crate::runtime::controller::volume_gain(10),
    ))?;
    cmd_tx.send(PlayerCommand::Play {
        id: 1,
        path: file.to_path_buf(),
    })?;
    let signals = signal_channel()?;
    let result = loop {
        select! {
            recv(rep_rx) -> r => match r {
                Ok(PlayerReport::Finished { outcome, .. }) => break outcome,
                Ok(_) => {}
                Err(_) => break PlayOutcome::Failed("the player stopped".into()),
            },
            recv(signals) -> _ => {
                let _ = cmd_tx.send(PlayerCommand::Stop);
            }
        }
    };
    let _ = cmd_tx.send(PlayerCommand::Shutdown);
    let _ = handle.join();
    match result {
        PlayOutcome::Completed | PlayOutcome::Stopped => Ok(()),
        PlayOutcome::Failed(why) => bail!("{why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("cannot read x.toml: no such file");
        assert_eq!(render_error(&e), "cannot read x.toml: no such file");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("cannot read x.toml");
        assert_eq!(render_error(&e), "cannot read x.toml: no such file");
    }

    #[test]
    fn root_is_refused_unless_allowed() {
        let e = refuse_root(0, false).unwrap_err().to_string();
        assert!(e.contains("root") && e.contains("--allow-root"), "{e}");
        assert!(refuse_root(0, true).is_ok());
        assert!(refuse_root(1000, false).is_ok());
        assert!(refuse_root(1000, true).is_ok());
    }

    #[test]
    fn run_and_sim_take_allow_root() {
        let cli = Cli::try_parse_from(["chatterbox", "run", "--allow-root"]).unwrap();
        assert!(matches!(cli.command, Command::Run { allow_root: true }));
        let cli = Cli::try_parse_from(["chatterbox", "sim", "--allow-root"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Sim(SimArgs {
                allow_root: true,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["chatterbox", "run"]).unwrap();
        assert!(matches!(cli.command, Command::Run { allow_root: false }));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
