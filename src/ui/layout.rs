//! One layout per screen and panel size. Coordinates are pixels from the top-left corner;
//! every text position is the *top* edge of the line (see [`widgets::text`]).
//!
//! The 128x64 layouts give the key value of each screen the big ×2 font; the 128x32 ones keep
//! the same information in one 10x20 line plus one 6x10 line.

use embedded_graphics::{
    mono_font::MonoFont, pixelcolor::BinaryColor, prelude::*, text::Alignment,
};

use super::widgets::{self, LARGE, MEDIUM, SMALL};
use super::Screen;

const ON: BinaryColor = BinaryColor::On;
const OFF: BinaryColor = BinaryColor::Off;
const W: i32 = 128;
const CENTER: i32 = W / 2;

/// The confidence as a 0..=1 value, NaN as 0.
fn unit(confidence: f32) -> f32 {
    if confidence.is_nan() {
        0.0
    } else {
        confidence.clamp(0.0, 1.0)
    }
}

fn percent(confidence: f32) -> String {
    format!("{}%", (unit(confidence) * 100.0).round() as u32)
}

/// The word as shown: upper case (capitals read better from afar), printable ASCII.
fn shown_word(word: &str) -> String {
    let w = widgets::sanitize(word.trim()).to_ascii_uppercase();
    if w.is_empty() {
        "?".to_string()
    } else {
        w
    }
}

/// A clip's file name as shown: no directory, no `.wav`.
fn shown_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let stem = match base.len().checked_sub(4) {
        Some(cut) if base.is_char_boundary(cut) && base[cut..].eq_ignore_ascii_case(".wav") => {
            &base[..cut]
        }
        _ => base,
    };
    widgets::sanitize(stem)
}

pub(super) fn draw_128x64<D>(screen: &Screen, t: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let background = if matches!(screen, Screen::ReleaseToErase) {
        ON
    } else {
        OFF
    };
    t.clear(background)?;
    match screen {
        Screen::Idle {
            clips,
            listening,
            volume,
        } => {
            // Status line: is the recognizer listening?
            widgets::dot(t, Point::new(4, 5), 8, *listening)?;
            let status = if *listening {
                "listening"
            } else {
                "not listening"
            };
            widgets::text(t, status, SMALL, Point::new(12, 0), Alignment::Left, ON)?;

            // The clip count, big.
            let number = if *clips > 9999 {
                "9999+".to_string()
            } else {
                clips.to_string()
            };
            let label = if *clips == 1 { "clip" } else { "clips" };
            let scale = if number.len() <= 4 { 2 } else { 1 };
            let number_w = (widgets::text_width(LARGE, &number) * scale) as i32;
            let label_w = widgets::text_width(MEDIUM, label) as i32;
            let gap = 5;
            let left = CENTER - (number_w + gap + label_w) / 2;
            let top = if scale == 2 { 9 } else { 20 };
            widgets::big_text(t, &number, scale, left + number_w / 2, top, ON)?;
            // Sit the label on the number's baseline.
            let baseline = top + (LARGE.baseline * scale) as i32;
            let label_top = baseline - MEDIUM.baseline as i32;
            widgets::text(
                t,
                label,
                MEDIUM,
                Point::new(left + number_w + gap, label_top),
                Alignment::Left,
                ON,
            )?;

            // Volume: a speaker and ten segments.
            volume_bar(t, Point::new(0, 54), *volume)?;
        }
        Screen::Heard { word, confidence } => {
            let word = shown_word(word);
            let n = word.chars().count() as u32;
            if n * LARGE.character_size.width * 2 <= W as u32 {
                widgets::big_text(t, &word, 2, CENTER, -2, ON)?;
            } else {
                let word = widgets::fit(&word, widgets::chars_in(LARGE, W as u32));
                widgets::big_text(t, &word, 1, CENTER, 12, ON)?;
            }
            widgets::gauge(t, Point::new(0, 47), Size::new(90, 13), unit(*confidence))?;
            widgets::text(
                t,
                &percent(*confidence),
                MEDIUM,
                Point::new(W - 1, 47),
                Alignment::Right,
                ON,
            )?;
        }
        Screen::Playing { name } => {
            widgets::play(t, Point::new(4, 4), 16)?;
            widgets::text(t, "Playing", LARGE, Point::new(22, 2), Alignment::Left, ON)?;
            let name = widgets::fit_middle(&shown_name(name), widgets::chars_in(MEDIUM, 126));
            widgets::text(
                t,
                &name,
                MEDIUM,
                Point::new(CENTER, 36),
                Alignment::Center,
                ON,
            )?;
        }
        Screen::Recording { seconds_left } => {
            widgets::dot(t, Point::new(9, 11), 15, true)?;
            widgets::text(
                t,
                "Recording",
                LARGE,
                Point::new(22, 1),
                Alignment::Left,
                ON,
            )?;
            let number = seconds_left.to_string();
            let number_w = (widgets::text_width(LARGE, &number) * 2) as i32;
            let label = "s left";
            let label_w = widgets::text_width(MEDIUM, label) as i32;
            let gap = 4;
            let left = CENTER - (number_w + gap + label_w) / 2;
            let top = 22;
            widgets::big_text(t, &number, 2, left + number_w / 2, top, ON)?;
            let baseline = top + (LARGE.baseline * 2) as i32;
            widgets::text(
                t,
                label,
                MEDIUM,
                Point::new(left + number_w + gap, baseline - MEDIUM.baseline as i32),
                Alignment::Left,
                ON,
            )?;
        }
        Screen::ReleaseToErase => {
            widgets::text(
                t,
                "RELEASE",
                LARGE,
                Point::new(CENTER, 2),
                Alignment::Center,
                OFF,
            )?;
            widgets::text(
                t,
                "to ERASE",
                LARGE,
                Point::new(CENTER, 22),
                Alignment::Center,
                OFF,
            )?;
            widgets::text(
                t,
                "all recordings",
                MEDIUM,
                Point::new(CENTER, 47),
                Alignment::Center,
                OFF,
            )?;
        }
        Screen::Erased { count } => {
            widgets::big_text(t, "ERASED", 2, CENTER, -2, ON)?;
            let line = widgets::fit(
                &format!("{} removed", widgets::clips(*count)),
                widgets::chars_in(MEDIUM, W as u32),
            );
            widgets::text(
                t,
                &line,
                MEDIUM,
                Point::new(CENTER, 46),
                Alignment::Center,
                ON,
            )?;
        }
        Screen::Error { title, detail } => {
            error_header(t, title, 22)?;
            let lines = widgets::wrap(
                &widgets::sanitize(detail),
                widgets::chars_in(MEDIUM, W as u32),
                3,
            );
            for (i, line) in lines.iter().enumerate() {
                widgets::text(
                    t,
                    line,
                    MEDIUM,
                    Point::new(0, 24 + 13 * i as i32),
                    Alignment::Left,
                    ON,
                )?;
            }
        }
        Screen::TeachReady
        | Screen::EnrollSay { .. }
        | Screen::EnrollGotIt { .. }
        | Screen::EnrollAgain { .. }
        | Screen::EnrollLearning { .. }
        | Screen::EnrollResult { .. } => enroll_128x64(screen, t)?,
    }
    Ok(())
}

pub(super) fn draw_128x32<D>(screen: &Screen, t: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let background = if matches!(screen, Screen::ReleaseToErase) {
        ON
    } else {
        OFF
    };
    t.clear(background)?;
    let second_line = 22;
    match screen {
        Screen::Idle {
            clips,
            listening,
            volume,
        } => {
            let count = widgets::fit(&widgets::clips(*clips), widgets::chars_in(LARGE, 128));
            widgets::text(
                t,
                &count,
                LARGE,
                Point::new(CENTER, 0),
                Alignment::Center,
                ON,
            )?;
            widgets::dot(t, Point::new(4, second_line + 4), 8, *listening)?;
            let status = if *listening { "listening" } else { "mic off" };
            widgets::text(
                t,
                status,
                SMALL,
                Point::new(12, second_line),
                Alignment::Left,
                ON,
            )?;
            widgets::speaker(t, Point::new(92, second_line))?;
            widgets::text(
                t,
                &format!("{}", (*volume).min(10)),
                SMALL,
                Point::new(W - 1, second_line),
                Alignment::Right,
                ON,
            )?;
        }
        Screen::Heard { word, confidence } => {
            let word = widgets::fit(&shown_word(word), widgets::chars_in(LARGE, 128));
            widgets::text(
                t,
                &word,
                LARGE,
                Point::new(CENTER, 0),
                Alignment::Center,
                ON,
            )?;
            widgets::gauge(
                t,
                Point::new(0, second_line),
                Size::new(96, 10),
                unit(*confidence),
            )?;
            widgets::text(
                t,
                &percent(*confidence),
                SMALL,
                Point::new(W - 1, second_line),
                Alignment::Right,
                ON,
            )?;
        }
        Screen::Playing { name } => {
            widgets::play(t, Point::new(4, 2), 16)?;
            widgets::text(t, "Playing", LARGE, Point::new(22, 0), Alignment::Left, ON)?;
            let name = widgets::fit_middle(&shown_name(name), widgets::chars_in(SMALL, 128));
            widgets::text(
                t,
                &name,
                SMALL,
                Point::new(CENTER, second_line),
                Alignment::Center,
                ON,
            )?;
        }
        Screen::Recording { seconds_left } => {
            widgets::dot(t, Point::new(7, 9), 13, true)?;
            widgets::text(t, "REC", LARGE, Point::new(18, 0), Alignment::Left, ON)?;
            widgets::text(
                t,
                &format!("{seconds_left}s"),
                LARGE,
                Point::new(W - 1, 0),
                Alignment::Right,
                ON,
            )?;
            widgets::text(
                t,
                "speak now!",
                SMALL,
                Point::new(CENTER, second_line),
                Alignment::Center,
                ON,
            )?;
        }
        Screen::ReleaseToErase => {
            widgets::text(
                t,
                "RELEASE",
                LARGE,
                Point::new(CENTER, 0),
                Alignment::Center,
                OFF,
            )?;
            widgets::text(
                t,
                "to erase all clips",
                SMALL,
                Point::new(CENTER, second_line),
                Alignment::Center,
                OFF,
            )?;
        }
        Screen::Erased { count } => {
            widgets::text(
                t,
                "ERASED",
                LARGE,
                Point::new(CENTER, 0),
                Alignment::Center,
                ON,
            )?;
            let line = widgets::fit(
                &format!("{} removed", widgets::clips(*count)),
                widgets::chars_in(SMALL, 128),
            );
            widgets::text(
                t,
                &line,
                SMALL,
                Point::new(CENTER, second_line),
                Alignment::Center,
                ON,
            )?;
        }
        Screen::Error { title, detail } => {
            error_header(t, title, 21)?;
            let line = widgets::fit(&widgets::sanitize(detail), widgets::chars_in(SMALL, 128));
            widgets::text(
                t,
                &line,
                SMALL,
                Point::new(0, second_line),
                Alignment::Left,
                ON,
            )?;
        }
        Screen::TeachReady
        | Screen::EnrollSay { .. }
        | Screen::EnrollGotIt { .. }
        | Screen::EnrollAgain { .. }
        | Screen::EnrollLearning { .. }
        | Screen::EnrollResult { .. } => enroll_128x32(screen, t)?,
    }
    Ok(())
}

/// "3/6", with absurd counts clamped so the text stays short.
fn take_of(take: usize, takes: usize) -> String {
    format!("{}/{}", take.min(99), takes.min(99))
}

/// "78%->96%": held-out accuracy before and after.
fn before_after(before: f32, after: f32) -> String {
    format!("{}->{}", percent(before), percent(after))
}

/// A word in the ×2 font when it fits the width, else the ×1 one; its top at `top`.
fn big_word<D>(t: &mut D, word: &str, top: i32) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let n = word.chars().count() as u32;
    if n * LARGE.character_size.width * 2 <= W as u32 {
        widgets::big_text(t, word, 2, CENTER, top, ON)
    } else {
        let word = widgets::fit(word, widgets::chars_in(LARGE, W as u32));
        widgets::big_text(t, &word, 1, CENTER, top + 10, ON)
    }
}

fn centered<D>(t: &mut D, s: &str, font: &MonoFont<'_>, top: i32) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let s = widgets::fit(&widgets::sanitize(s), widgets::chars_in(font, W as u32));
    widgets::text(t, &s, font, Point::new(CENTER, top), Alignment::Center, ON)
}

/// The teaching screens at 128x64: the word to say is the big thing, as "heard" shows the
/// word heard.
fn enroll_128x64<D>(screen: &Screen, t: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    match screen {
        Screen::TeachReady => {
            widgets::big_text(t, "LET GO", 2, CENTER, -2, ON)?;
            centered(t, "to teach me", MEDIUM, 37)?;
            centered(t, "your voice", MEDIUM, 50)?;
        }
        Screen::EnrollSay {
            word,
            take,
            takes,
            other_word,
            listening,
        } => {
            widgets::text(t, "say:", MEDIUM, Point::new(0, 0), Alignment::Left, ON)?;
            // An other word is said once: count the words, not takes of it.
            let count = if *other_word { "word" } else { "take" };
            widgets::text(
                t,
                &format!("{count} {}", take_of(*take, *takes)),
                MEDIUM,
                Point::new(W - 1, 0),
                Alignment::Right,
                ON,
            )?;
            big_word(t, &shown_word(word), 11)?;
            widgets::dot(t, Point::new(4, 58), 8, *listening)?;
            let status = if *listening {
                "listening..."
            } else {
                "wait for green"
            };
            widgets::text(t, status, MEDIUM, Point::new(12, 51), Alignment::Left, ON)?;
        }
        Screen::EnrollGotIt {
            word, take, takes, ..
        } => {
            widgets::big_text(t, "GOT IT", 2, CENTER, -2, ON)?;
            centered(
                t,
                &format!("{} {}", shown_word(word), take_of(*take, *takes)),
                MEDIUM,
                46,
            )?;
        }
        Screen::EnrollAgain { word, reason } => {
            centered(t, &reason.to_ascii_uppercase(), LARGE, 0)?;
            centered(t, "again, please:", MEDIUM, 22)?;
            centered(t, &shown_word(word), LARGE, 40)?;
        }
        Screen::EnrollLearning { takes } => {
            centered(t, "Learning...", LARGE, 6)?;
            centered(t, &format!("from {} takes", takes.min(&9999)), MEDIUM, 32)?;
            centered(t, "under a minute", SMALL, 52)?;
        }
        Screen::EnrollResult {
            before,
            after,
            switched,
        } => {
            let (title, line) = if *switched {
                ("Learned!", "your voice:")
            } else {
                ("Kept old", "model: no better")
            };
            centered(t, title, LARGE, 0)?;
            centered(t, line, MEDIUM, 22)?;
            centered(t, &before_after(*before, *after), LARGE, 40)?;
        }
        _ => {}
    }
    Ok(())
}

/// The teaching screens at 128x32: one 10x20 line and one 6x10 line.
fn enroll_128x32<D>(screen: &Screen, t: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let second = 22;
    match screen {
        Screen::TeachReady => {
            centered(t, "LET GO", LARGE, 0)?;
            centered(t, "to teach me your voice", SMALL, second)?;
        }
        Screen::EnrollSay {
            word,
            take,
            takes,
            listening,
            ..
        } => {
            let count = take_of(*take, *takes);
            let room = W as u32 - widgets::text_width(LARGE, &count) - 6;
            // A longer word ("CHOCOLATE") in a smaller font rather than cut: the owner must
            // be able to read what to say.
            let word = shown_word(word);
            let font = [LARGE, MEDIUM]
                .into_iter()
                .find(|f| word.chars().count() <= widgets::chars_in(f, room))
                .unwrap_or(SMALL);
            let word = widgets::fit(&word, widgets::chars_in(font, room));
            widgets::text(t, &word, font, Point::new(0, 0), Alignment::Left, ON)?;
            widgets::text(t, &count, LARGE, Point::new(W - 1, 0), Alignment::Right, ON)?;
            widgets::dot(t, Point::new(4, second + 4), 8, *listening)?;
            let status = if *listening {
                "listening: say it!"
            } else {
                "say it when green"
            };
            widgets::text(
                t,
                status,
                SMALL,
                Point::new(12, second),
                Alignment::Left,
                ON,
            )?;
        }
        Screen::EnrollGotIt {
            word, take, takes, ..
        } => {
            centered(t, "GOT IT", LARGE, 0)?;
            centered(
                t,
                &format!("{} {}", shown_word(word), take_of(*take, *takes)),
                SMALL,
                second,
            )?;
        }
        Screen::EnrollAgain { word, reason } => {
            centered(t, &reason.to_ascii_uppercase(), LARGE, 0)?;
            centered(t, &format!("again: {}", shown_word(word)), SMALL, second)?;
        }
        Screen::EnrollLearning { takes } => {
            centered(t, "Learning...", LARGE, 0)?;
            centered(
                t,
                &format!("from {} takes", takes.min(&9999)),
                SMALL,
                second,
            )?;
        }
        Screen::EnrollResult {
            before,
            after,
            switched,
        } => {
            centered(t, &before_after(*before, *after), LARGE, 0)?;
            let line = if *switched {
                "learned your voice"
            } else {
                "kept the old model"
            };
            centered(t, line, SMALL, second)?;
        }
        _ => {}
    }
    Ok(())
}

/// An inverted bar `height` tall across the top with a warning sign and the title.
fn error_header<D>(t: &mut D, title: &str, height: u32) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
    Rectangle::new(Point::zero(), Size::new(W as u32, height))
        .into_styled(PrimitiveStyle::with_fill(ON))
        .draw(t)?;
    let icon_top = (height as i32 - 15) / 2;
    widgets::warning(t, Point::new(3, icon_top), OFF)?;
    // A title too long for the 10x20 font gets the 7x13 one before it gets cut.
    let title = widgets::sanitize(title.trim());
    let room = W as u32 - 24;
    let font = if title.chars().count() <= widgets::chars_in(LARGE, room) {
        LARGE
    } else {
        MEDIUM
    };
    let title = widgets::fit(&title, widgets::chars_in(font, room));
    let text_top = (height as i32 - font.character_size.height as i32) / 2;
    widgets::text(
        t,
        &title,
        font,
        Point::new(24, text_top),
        Alignment::Left,
        OFF,
    )
}

/// A speaker icon then ten segments, `volume` of them filled (clamped to 10).
fn volume_bar<D>(t: &mut D, at: Point, volume: u8) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
    widgets::speaker(t, at)?;
    let filled = volume.min(10) as i32;
    for i in 0..10 {
        let x = at.x + 14 + i * 11;
        let segment = Rectangle::new(Point::new(x, at.y), Size::new(9, 9));
        let style = if i < filled {
            PrimitiveStyle::with_fill(ON)
        } else {
            PrimitiveStyle::with_stroke(ON, 1)
        };
        segment.into_styled(style).draw(t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_directory_and_extension() {
        assert_eq!(shown_name("/var/lib/x/2026-01-01.wav"), "2026-01-01");
        assert_eq!(shown_name("clip.WAV"), "clip");
        assert_eq!(shown_name("notes.txt"), "notes.txt");
        assert_eq!(shown_name("é.wav"), "?");
        assert_eq!(shown_name(""), "");
    }

    #[test]
    fn words_are_capitalised_and_never_empty() {
        assert_eq!(shown_word(" stop "), "STOP");
        assert_eq!(shown_word(""), "?");
    }

    #[test]
    fn percent_is_clamped() {
        assert_eq!(percent(0.874), "87%");
        assert_eq!(percent(2.0), "100%");
        assert_eq!(percent(-1.0), "0%");
        assert_eq!(percent(f32::NAN), "0%");
    }
}
