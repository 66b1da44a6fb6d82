//! Clip accuracy of a model on a folder of labelled 1 s clips: either flat
//! (`<label>__<anything>.wav`, the held-out fixtures CI checks) or in the Speech Commands
//! layout (`<label>/<anything>.wav`, what `chatterbox enroll` writes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::front_end::FrontEnd;
use super::listener::KwsError;
use super::meta::KwsMeta;
use super::model::Classifier;
use crate::audio::wav::{convert, read_clip};
use crate::audio::PcmFormat;

/// One clip's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipResult {
    pub file: String,
    pub want: String,
    pub got: String,
    pub confidence: f32,
}

/// Every clip's verdict, in file-name order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub results: Vec<ClipResult>,
    /// Files that could not be read or are not named `<label>__…`, with why.
    pub skipped: Vec<(String, String)>,
}

impl Evaluation {
    pub fn correct(&self) -> usize {
        self.results.iter().filter(|r| r.want == r.got).count()
    }

    pub fn accuracy(&self) -> f32 {
        if self.results.is_empty() {
            0.0
        } else {
            self.correct() as f32 / self.results.len() as f32
        }
    }

    /// A plain-text report: per-word accuracy, then every mistake.
    pub fn render(&self) -> String {
        let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for r in &self.results {
            let e = per.entry(&r.want).or_default();
            e.1 += 1;
            if r.want == r.got {
                e.0 += 1;
            }
        }
        let mut out = String::new();
        for (word, (ok, n)) in &per {
            let _ = writeln!(
                out,
                "{word:<8} {ok:>3}/{n:<3} {:5.1} %",
                100.0 * *ok as f32 / *n as f32
            );
        }
        let _ = writeln!(
            out,
            "all      {:>3}/{:<3} {:5.1} %",
            self.correct(),
            self.results.len(),
            100.0 * self.accuracy()
        );
        for r in self.results.iter().filter(|r| r.want != r.got) {
            let _ = writeln!(
                out,
                "  {}: heard {} ({:.2}), said {}",
                r.file, r.got, r.confidence, r.want
            );
        }
        for (file, why) in &self.skipped {
            let _ = writeln!(out, "  skipped {file}: {why}");
        }
        out
    }
}

/// Which clips of a folder to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clips {
    /// Every labelled clip.
    All,
    /// Only those listed in the folder's `testing_list.txt` (the takes `chatterbox enroll`
    /// set aside and the trainer never trains on): the honest figure after retraining.
    HeldOut,
}

/// The relative paths (`word/file.wav`) listed in `dir/testing_list.txt`.
fn held_out_list(dir: &Path) -> Result<std::collections::BTreeSet<String>, KwsError> {
    let list = dir.join("testing_list.txt");
    let text = std::fs::read_to_string(&list).map_err(|e| {
        KwsError::Folder(format!(
            "cannot read {}: {e}; --held-out needs the list `chatterbox enroll` writes",
            list.display()
        ))
    })?;
    Ok(text.lines().map(|l| l.trim().to_string()).collect())
}

/// Classifies every `<label>__*.wav` in `dir` (any rate/channels) as the trainer does: the
/// STFT front end reads its first second, the embedding front end the clip centred in its
/// window (see [`FrontEnd::clip`]).
pub fn evaluate_dir(
    meta: &KwsMeta,
    classifier: &mut dyn Classifier,
    dir: &Path,
    which: Clips,
) -> Result<Evaluation, KwsError> {
    let held_out = match which {
        Clips::All => None,
        Clips::HeldOut => Some(held_out_list(dir)?),
    };
    let mut front_end = FrontEnd::load(meta)?;
    let mut scores = vec![0.0f32; meta.labels.len()];
    let mut eval = Evaluation::default();
    let read = |d: &Path| {
        std::fs::read_dir(d)
            .map_err(|e| KwsError::Folder(format!("cannot read clip folder {}: {e}", d.display())))
    };
    // (label from the folder, if any; path)
    let mut files: Vec<(Option<String>, std::path::PathBuf)> = Vec::new();
    for entry in read(dir)?.flatten() {
        let path = entry.path();
        let is_wav = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
        if path.is_dir() {
            let label = entry.file_name().to_string_lossy().into_owned();
            if meta.labels.contains(&label) {
                for f in read(&path)?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| is_wav(p))
                {
                    files.push((Some(label.clone()), f));
                }
            }
        } else if is_wav(&path) {
            files.push((None, path));
        }
    }
    files.sort();
    let mono16k = PcmFormat {
        rate: meta.features.sample_rate,
        channels: 1,
    };
    for (folder_label, path) in files {
        let file = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if let Some(list) = &held_out {
            // testing_list.txt uses '/' whatever the platform.
            let key = file.replace(std::path::MAIN_SEPARATOR, "/");
            if !list.contains(&key) {
                continue;
            }
        }
        let from_name = || file.split_once("__").map(|(l, _)| l.to_string());
        let Some(want) = folder_label.or_else(from_name) else {
            eval.skipped
                .push((file, "not named <label>__<anything>.wav".into()));
            continue;
        };
        if !meta.labels.contains(&want) {
            eval.skipped
                .push((file, format!("'{want}' is not one of the model's labels")));
            continue;
        }
        let clip = match read_clip(&path, 60.0) {
            Ok(c) => c,
            Err(e) => {
                eval.skipped.push((file, e.to_string()));
                continue;
            }
        };
        let samples: Vec<f32> = convert(&clip, mono16k, 1.0)?
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let features = front_end.clip(&samples)?;
        classifier.classify(features, &mut scores)?;
        // A broken head must show, not score as whichever class is finite.
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(super::detector::DetectorError::NonFinite {
                index,
                label: meta.labels[index].clone(),
                value,
            }
            .into());
        }
        let (best, confidence) = super::model::top(&scores).unwrap_or((0, 0.0));
        eval.results.push(ClipResult {
            file,
            want,
            got: meta.labels[best].clone(),
            confidence,
        });
    }
    Ok(eval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kws::model::testing::ScriptedClassifier;

    fn meta() -> KwsMeta {
        KwsMeta::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kws_example.toml"
        ))
        .unwrap()
    }

    fn take(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..16_000 {
            w.write_sample(((i % 50) as i16 - 25) * 100).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn held_out_evaluates_only_the_listed_takes() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["go/a.wav", "go/b.wav", "stop/c.wav", "stop/d.wav"] {
            take(&dir.path().join(f));
        }
        let m = meta();
        let shape = vec![1, m.features.bins(), m.features.frames(), 1];
        let go = ScriptedClassifier::peaked(&m.labels, "go", 0.9);
        let mut c = ScriptedClassifier::new(m.labels.clone(), shape, vec![]).with_idle(go);
        let all = evaluate_dir(&m, &mut c, dir.path(), Clips::All).unwrap();
        assert_eq!(all.results.len(), 4);
        assert_eq!(all.correct(), 2);

        let err = evaluate_dir(&m, &mut c, dir.path(), Clips::HeldOut).unwrap_err();
        assert!(err.to_string().contains("testing_list.txt"), "{err}");

        std::fs::write(
            dir.path().join("testing_list.txt"),
            "go/b.wav\nstop/d.wav\n",
        )
        .unwrap();
        let held = evaluate_dir(&m, &mut c, dir.path(), Clips::HeldOut).unwrap();
        let files: Vec<&str> = held.results.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(files, ["go/b.wav", "stop/d.wav"]);
        assert_eq!(held.correct(), 1);
    }
}
