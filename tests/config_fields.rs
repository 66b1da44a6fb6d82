//! Every config key, systematically: a value of the wrong type, values outside its range,
//! and (for text) an empty value must each be refused with a message that names the key
//! as `section.key` and says what it accepts. The keys come from the defaults themselves,
//! so a key added later is covered without touching this file.

use std::path::Path;

use chatterbox::config::{allowed, Config};

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("bad.toml"), Path::new("")).map_err(|e| e.to_string())
}

/// (section, key, default value) of every key except the keyword→command map.
fn every_key() -> Vec<(String, String, toml::Value)> {
    let defaults: toml::Table =
        toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
    let mut keys = Vec::new();
    for (section, table) in defaults {
        for (key, value) in table.as_table().unwrap() {
            if !value.is_table() {
                keys.push((section.clone(), key.clone(), value.clone()));
            }
        }
    }
    keys
}

/// Values that no key may accept, given its default's type.
fn wrong_values(default: &toml::Value) -> Vec<&'static str> {
    match default {
        toml::Value::String(_) => vec!["12", "true", "[\"a\"]", "\"\"", "\"   \""],
        toml::Value::Integer(_) => vec!["\"x\"", "true", "-1", "99999999999", "2.5e9"],
        toml::Value::Float(_) => vec!["\"x\"", "true", "nan", "inf", "-1e9", "1e9"],
        toml::Value::Boolean(_) => vec!["\"yes\"", "1", "[true]"],
        other => panic!("a config key of unexpected type: {other:?}"),
    }
}

#[test]
fn every_key_documents_what_it_accepts() {
    let keys = every_key();
    assert!(keys.len() >= 28, "only {} keys found", keys.len());
    for (section, key, _) in &keys {
        let field = format!("{section}.{key}");
        assert!(allowed(&field).is_some(), "{field} has no `allowed` text");
    }
}

#[test]
fn every_wrong_value_of_every_key_is_refused_naming_the_key_and_what_it_accepts() {
    let mut tried = 0;
    let mut gaps = Vec::new();
    for (section, key, default) in every_key() {
        let field = format!("{section}.{key}");
        let accepts = allowed(&field).unwrap();
        for value in wrong_values(&default) {
            // Paths may be any non-empty text; blank-but-not-empty is a legal folder name.
            if value == "\"   \"" && !field.ends_with("_device") {
                continue;
            }
            // pace_capture takes "auto" or a boolean: `true` is a right value there.
            if field == "audio.pace_capture" && value == "true" {
                continue;
            }
            // An empty model or sounds folder means the shipped one (src/shipped.rs); an
            // empty state folder, the one holding the recordings (`Config::state_dir`).
            if value == "\"\""
                && ["keywords.model", "library.sounds_dir", "keywords.state_dir"]
                    .contains(&field.as_str())
            {
                continue;
            }
            tried += 1;
            let text = format!("[{section}]\n{key} = {value}\n");
            match parse(&text) {
                Ok(_) => gaps.push(format!("{field} = {value} was accepted")),
                Err(e) => {
                    if !(e.contains(&field) && e.contains(accepts) && e.contains("bad.toml")) {
                        gaps.push(format!(
                            "{field} = {value}: message lacks field/range:\n{e}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        gaps.is_empty(),
        "{} of {tried} bad values:\n{}",
        gaps.len(),
        gaps.join("\n")
    );
    println!("config: {tried} wrong values over every key, all refused with field and range");
}

#[test]
fn a_command_that_is_not_a_command_lists_the_commands() {
    for value in ["5", "\"dance\"", "true"] {
        let e = parse(&format!("[keywords.commands]\ngo = {value}\n")).unwrap_err();
        assert!(
            e.contains("play-random") && e.contains("go"),
            "{value}: {e}"
        );
    }
}

#[test]
fn the_example_ranges_hold_at_their_edges() {
    // Values at the documented edges are accepted (the messages do not lie).
    for text in [
        "[audio]\nrate = 8000\nchannels = 1\nchunk_ms = 5\nvolume = 0\nmax_clip_seconds = 3600.0\n",
        "[audio]\nrate = 192000\nchannels = 2\nchunk_ms = 200\nvolume = 10\n",
        "[button]\npin = 0\ndebounce_ms = 5\npoll_ms = 1\nrecord_hold_s = 0.5\nerase_hold_s = 600.0\nrecord_seconds = 600.0\n",
        "[keywords]\nhop_ms = 20\naverage_ms = 20\nrefractory_ms = 10000\nquiet_dbfs = -120.0\n",
        "[display]\naddress = 127\ni2c_bus = 255\nsize = \"128x32\"\n",
    ] {
        assert!(parse(text).is_ok(), "{text}: {:?}", parse(text).err());
    }
}
