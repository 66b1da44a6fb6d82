//! Finding the files chatterbox ships with — the keyword model and the cue sounds — when
//! the config does not name them, without depending on the folder the program was started
//! from (`chatterbox listen clip.wav` must work from any folder).
//!
//! The places, in order:
//! 1. the installed share folder of the prefix the binary lives in: `/usr/bin/chatterbox`
//!    (the Debian package) looks in `/usr/share/chatterbox`, `/usr/local/bin/chatterbox`
//!    (`scripts/install.sh`) in `/usr/local/share/chatterbox`. Derived from the binary, not
//!    fixed, so a development build never picks up the files of an installed package;
//! 2. the binary's own folder (a binary copied to a folder together with `models/` and
//!    `sounds/`);
//! 3. the checkout it was built from (`CARGO_MANIFEST_DIR` at build time), so
//!    `target/release/chatterbox` works from anywhere on the build machine.
//!
//! When none has the file, the error lists every place looked at.

use std::fmt;
use std::path::{Path, PathBuf};

/// One kind of shipped file: what it is called in messages, where it sits under each
/// place, and the config key that overrides the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shipped {
    pub what: &'static str,
    pub relative: &'static str,
    pub config_key: &'static str,
    pub is_dir: bool,
}

/// The keyword model's metadata file (it names the .tflite and labels beside it).
pub const MODEL: Shipped = Shipped {
    what: "keyword model",
    relative: "models/kws.toml",
    config_key: "keywords.model",
    is_dir: false,
};

/// The speech-embedding model's contract: the one `chatterbox adapt` adapts (it carries the
/// replay set and weight layout in its `[adapt]` table).
pub const EMBEDDING_MODEL: Shipped = Shipped {
    what: "speech-embedding keyword model",
    relative: "models/embedding/kws.toml",
    config_key: "keywords.model",
    is_dir: false,
};

/// The folder of cue sounds (burp.wav, erase.wav, empty.wav).
pub const SOUNDS: Shipped = Shipped {
    what: "cue sounds folder",
    relative: "sounds",
    config_key: "library.sounds_dir",
    is_dir: true,
};

/// Where the package installs the shared files, under a prefix.
const SHARE_SUBDIR: &str = "share/chatterbox";

/// The folders searched, most specific first (see the module docs for the order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPlaces {
    pub dirs: Vec<PathBuf>,
}

impl SearchPlaces {
    /// The places for a binary at `exe` built from `checkout`.
    pub fn new(exe: Option<&Path>, checkout: &Path) -> SearchPlaces {
        let mut dirs = Vec::new();
        if let Some(bin_dir) = exe.and_then(Path::parent) {
            if let Some(prefix) = bin_dir.parent() {
                dirs.push(prefix.join(SHARE_SUBDIR));
            }
            dirs.push(bin_dir.to_path_buf());
        }
        dirs.push(checkout.to_path_buf());
        dirs.dedup();
        SearchPlaces { dirs }
    }

    /// The places for the running program. `current_exe` is the resolved path on Linux
    /// (/proc/self/exe), so a symlink in /usr/bin still finds the real prefix.
    pub fn for_this_program() -> SearchPlaces {
        let exe = std::env::current_exe().ok();
        SearchPlaces::new(exe.as_deref(), Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    /// The first place holding `file`, or every candidate path tried.
    pub fn find(&self, file: Shipped) -> Result<PathBuf, NotFound> {
        let candidates: Vec<PathBuf> = self.dirs.iter().map(|d| d.join(file.relative)).collect();
        candidates
            .iter()
            .find(|p| if file.is_dir { p.is_dir() } else { p.is_file() })
            .cloned()
            .ok_or(NotFound {
                file,
                looked: candidates,
            })
    }
}

/// A shipped file that is in none of the places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotFound {
    pub file: Shipped,
    pub looked: Vec<PathBuf>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let looked: Vec<String> = self
            .looked
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        write!(
            f,
            "cannot find the {} ({}): looked in {}. Reinstall the package, or set `{}` in the config file (--config) to where it is",
            self.file.what,
            self.file.relative,
            looked.join(", "),
            self.file.config_key
        )
    }
}

impl std::error::Error for NotFound {}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn places_are_share_folder_then_binary_folder_then_checkout() {
        let p = SearchPlaces::new(Some(Path::new("/usr/bin/chatterbox")), Path::new("/src/cb"));
        assert_eq!(
            p.dirs,
            [
                PathBuf::from("/usr/share/chatterbox"),
                PathBuf::from("/usr/bin"),
                PathBuf::from("/src/cb"),
            ]
        );
        let local = SearchPlaces::new(
            Some(Path::new("/usr/local/bin/chatterbox")),
            Path::new("/src/cb"),
        );
        assert_eq!(local.dirs[0], Path::new("/usr/local/share/chatterbox"));
        // Without a known binary only the checkout is left.
        let none = SearchPlaces::new(None, Path::new("/src/cb"));
        assert_eq!(none.dirs, [PathBuf::from("/src/cb")]);
    }

    #[test]
    fn the_first_place_holding_the_file_wins() {
        let root = tempfile::tempdir().unwrap();
        let exe = root.path().join("usr/bin/chatterbox");
        let checkout = root.path().join("checkout");
        let places = SearchPlaces::new(Some(&exe), &checkout);

        // Only the checkout has it.
        touch(&checkout.join("models/kws.toml"));
        assert_eq!(
            places.find(MODEL).unwrap(),
            checkout.join("models/kws.toml")
        );
        // Beside the binary beats the checkout.
        touch(&root.path().join("usr/bin/models/kws.toml"));
        assert_eq!(
            places.find(MODEL).unwrap(),
            root.path().join("usr/bin/models/kws.toml")
        );
        // The installed share folder beats both.
        touch(&root.path().join("usr/share/chatterbox/models/kws.toml"));
        assert_eq!(
            places.find(MODEL).unwrap(),
            root.path().join("usr/share/chatterbox/models/kws.toml")
        );
    }

    #[test]
    fn a_folder_is_needed_for_sounds_and_a_file_for_the_model() {
        let root = tempfile::tempdir().unwrap();
        let exe = root.path().join("bin/chatterbox");
        let places = SearchPlaces::new(Some(&exe), &root.path().join("checkout"));
        // A file called `sounds` and a folder called `kws.toml` do not count.
        touch(&root.path().join("share/chatterbox/sounds"));
        std::fs::create_dir_all(root.path().join("share/chatterbox/models/kws.toml")).unwrap();
        assert!(places.find(SOUNDS).is_err());
        assert!(places.find(MODEL).is_err());
        std::fs::create_dir_all(root.path().join("bin/sounds")).unwrap();
        assert_eq!(places.find(SOUNDS).unwrap(), root.path().join("bin/sounds"));
    }

    #[test]
    fn not_found_lists_every_place_and_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let exe = root.path().join("opt/bin/chatterbox");
        let checkout = root.path().join("gone");
        let err = SearchPlaces::new(Some(&exe), &checkout)
            .find(MODEL)
            .unwrap_err();
        assert_eq!(err.looked.len(), 3);
        let msg = err.to_string();
        for place in [
            root.path().join("opt/share/chatterbox/models/kws.toml"),
            root.path().join("opt/bin/models/kws.toml"),
            checkout.join("models/kws.toml"),
        ] {
            assert!(msg.contains(&place.display().to_string()), "{msg}");
        }
        assert!(msg.contains("keywords.model"), "{msg}");
    }
}
