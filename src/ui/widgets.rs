//! Small drawing helpers shared by the layouts: text that fits, magnified text, icons.
//!
//! Text is ASCII-only on purpose: the embedded-graphics mono fonts used here are the ASCII
//! sets, and a '?' is more honest than a blank for a character the panel cannot show.

use embedded_graphics::{
    mono_font::{
        ascii::{FONT_10X20, FONT_6X10, FONT_7X13},
        MonoFont, MonoTextStyle,
    },
    pixelcolor::BinaryColor,
    prelude::*,
    primitives::{Circle, PrimitiveStyle, Rectangle, Triangle},
    text::{Alignment, Baseline, Text, TextStyleBuilder},
};

/// Secondary lines only (status bar, 128x32 second rows).
pub const SMALL: &MonoFont<'static> = &FONT_6X10;
/// Ordinary text.
pub const MEDIUM: &MonoFont<'static> = &FONT_7X13;
/// Headings; magnified ×2 for the one thing that matters on a screen.
pub const LARGE: &MonoFont<'static> = &FONT_10X20;

const ON: BinaryColor = BinaryColor::On;

/// Replaces anything the ASCII fonts cannot draw with '?', and control characters with spaces.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .collect()
}

/// `text` cut to at most `max` characters, ending in ".." when something was cut.
pub fn fit(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    if max <= 2 {
        return ".".repeat(max);
    }
    let mut out: String = text.chars().take(max - 2).collect();
    out.push_str("..");
    out
}

/// `text` cut to at most `max` characters by dropping its middle: for file names, whose
/// start (the date) and end (the time) both matter.
pub fn fit_middle(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    if max <= 2 {
        return ".".repeat(max);
    }
    let keep = max - 2;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let mut out: String = chars[..head].iter().collect();
    out.push_str("..");
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Greedy word wrap into at most `max_lines` lines of at most `width` characters. Words
/// longer than a line are split; if the text does not fit, the last line ends in "..".
pub fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    if width == 0 || max_lines == 0 {
        return Vec::new();
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut overflow = false;
    'words: for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let cur_len = current.chars().count();
            let needed = if cur_len == 0 {
                word.len()
            } else {
                cur_len + 1 + word.len()
            };
            if needed <= width {
                if cur_len > 0 {
                    current.push(' ');
                }
                current.extend(word.iter());
                break;
            }
            if cur_len > 0 {
                lines.push(std::mem::take(&mut current));
            } else {
                // A word longer than a whole line: split it.
                lines.push(word[..width].iter().collect());
                word.drain(..width);
            }
            if lines.len() == max_lines {
                overflow = true;
                break 'words;
            }
            if word.is_empty() {
                break;
            }
        }
    }
    if !overflow && !current.is_empty() {
        if lines.len() == max_lines {
            overflow = true;
        } else {
            lines.push(current);
        }
    }
    if overflow {
        if let Some(last) = lines.last_mut() {
            let cut: String = last.chars().take(width.saturating_sub(2)).collect();
            *last = format!("{}..", cut.trim_end());
        }
    }
    lines
}

/// "1 clip", "12 clips".
pub fn clips(n: usize) -> String {
    if n == 1 {
        "1 clip".to_string()
    } else {
        format!("{n} clips")
    }
}

/// How many characters of `font` fit in `pixels`.
pub fn chars_in(font: &MonoFont<'_>, pixels: u32) -> usize {
    let w = font.character_size.width + font.character_spacing;
    (pixels / w.max(1)) as usize
}

/// Width in pixels of `text` in `font`.
pub fn text_width(font: &MonoFont<'_>, text: &str) -> u32 {
    let n = text.chars().count() as u32;
    if n == 0 {
        return 0;
    }
    n * font.character_size.width + (n - 1) * font.character_spacing
}

/// Draws one line of text whose top edge is at `pos.y`; `pos.x` is the left edge, the centre
/// or the right edge according to `align`.
pub fn text<D>(
    target: &mut D,
    s: &str,
    font: &MonoFont<'_>,
    pos: Point,
    align: Alignment,
    color: BinaryColor,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let style = MonoTextStyle::new(font, color);
    let layout = TextStyleBuilder::new()
        .alignment(align)
        .baseline(Baseline::Top)
        .build();
    Text::with_text_style(s, pos, style, layout).draw(target)?;
    Ok(())
}

/// Draws `s` in [`LARGE`] magnified `scale` times, its top edge at `top`, centred on
/// `center_x`.
pub fn big_text<D>(
    target: &mut D,
    s: &str,
    scale: u32,
    center_x: i32,
    top: i32,
    color: BinaryColor,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let width = (text_width(LARGE, s) * scale) as i32;
    let origin = Point::new(center_x - width / 2, top);
    let mut mag = Magnified::new(target, origin, scale);
    text(&mut mag, s, LARGE, Point::zero(), Alignment::Left, color)
}

/// A draw target that magnifies everything drawn into it by an integer factor, so the 10x20
/// font can be shown 20x40. Pixel-doubling keeps the glyphs crisp on a 1-bit panel, unlike
/// any smoothing would.
pub struct Magnified<'a, D> {
    target: &'a mut D,
    origin: Point,
    scale: u32,
}

impl<'a, D> Magnified<'a, D>
where
    D: DrawTarget<Color = BinaryColor>,
{
    /// Drawing at (0, 0) lands at `origin` on `target`; `scale` 0 is treated as 1.
    pub fn new(target: &'a mut D, origin: Point, scale: u32) -> Self {
        Magnified {
            target,
            origin,
            scale: scale.max(1),
        }
    }
}

impl<D> Dimensions for Magnified<'_, D>
where
    D: DrawTarget<Color = BinaryColor>,
{
    fn bounding_box(&self) -> Rectangle {
        let outer = self.target.bounding_box();
        let s = self.scale as i32;
        let top_left = Point::new(
            (outer.top_left.x - self.origin.x).div_euclid(s),
            (outer.top_left.y - self.origin.y).div_euclid(s),
        );
        Rectangle::new(top_left, outer.size / self.scale + Size::new(1, 1))
    }
}

impl<D> DrawTarget for Magnified<'_, D>
where
    D: DrawTarget<Color = BinaryColor>,
{
    type Color = BinaryColor;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let s = self.scale;
        for Pixel(p, color) in pixels {
            let at = self.origin + p * s as i32;
            self.target
                .fill_solid(&Rectangle::new(at, Size::new(s, s)), color)?;
        }
        Ok(())
    }
}

/// A round status dot of `diameter` centred at `center`: filled = active, hollow = inactive.
pub fn dot<D>(target: &mut D, center: Point, diameter: u32, filled: bool) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let style = if filled {
        PrimitiveStyle::with_fill(ON)
    } else {
        PrimitiveStyle::with_stroke(ON, 1)
    };
    Circle::with_center(center, diameter)
        .into_styled(style)
        .draw(target)
}

/// A 9x9 loudspeaker with its top-left corner at `at`.
pub fn speaker<D>(target: &mut D, at: Point) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let fill = PrimitiveStyle::with_fill(ON);
    Rectangle::new(at + Point::new(0, 3), Size::new(3, 3))
        .into_styled(fill)
        .draw(target)?;
    Triangle::new(
        at + Point::new(2, 4),
        at + Point::new(6, 0),
        at + Point::new(6, 8),
    )
    .into_styled(fill)
    .draw(target)?;
    Rectangle::new(at + Point::new(6, 0), Size::new(1, 9))
        .into_styled(fill)
        .draw(target)
}

/// A filled "play" triangle `height` pixels tall with its top-left corner at `at`.
pub fn play<D>(target: &mut D, at: Point, height: u32) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let h = height as i32;
    Triangle::new(
        at,
        at + Point::new(0, h - 1),
        at + Point::new(h * 3 / 4, h / 2),
    )
    .into_styled(PrimitiveStyle::with_fill(ON))
    .draw(target)
}

/// A warning sign (triangle with "!") 17 pixels wide, 15 tall, in `color`, with the mark cut
/// out of it, top-left corner at `at`.
pub fn warning<D>(target: &mut D, at: Point, color: BinaryColor) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    Triangle::new(
        at + Point::new(8, 0),
        at + Point::new(0, 14),
        at + Point::new(16, 14),
    )
    .into_styled(PrimitiveStyle::with_fill(color))
    .draw(target)?;
    let mark = PrimitiveStyle::with_fill(color.invert());
    Rectangle::new(at + Point::new(7, 4), Size::new(3, 6))
        .into_styled(mark)
        .draw(target)?;
    Rectangle::new(at + Point::new(7, 11), Size::new(3, 2))
        .into_styled(mark)
        .draw(target)
}

/// A horizontal gauge: an outline `size` big at `at`, filled `fraction` (0..=1) of the way.
pub fn gauge<D>(target: &mut D, at: Point, size: Size, fraction: f32) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    Rectangle::new(at, size)
        .into_styled(PrimitiveStyle::with_stroke(ON, 1))
        .draw(target)?;
    let inner = size.width.saturating_sub(4);
    let f = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let filled = (inner as f32 * f).round() as u32;
    if filled > 0 {
        Rectangle::new(
            at + Point::new(2, 2),
            Size::new(filled, size.height.saturating_sub(4)),
        )
        .into_styled(PrimitiveStyle::with_fill(ON))
        .draw(target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Framebuffer;

    #[test]
    fn sanitize_keeps_ascii_and_marks_the_rest() {
        assert_eq!(sanitize("go\tup"), "go up");
        assert_eq!(sanitize("héllo"), "h?llo");
    }

    #[test]
    fn fit_cuts_with_dots() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello world", 7), "hello..");
        assert_eq!(fit("hello", 2), "..");
        assert_eq!(fit_middle("2026-11-23T10-15-42", 12), "2026-..15-42");
        assert_eq!(fit_middle("abc", 12), "abc");
        assert_eq!(fit_middle("abcdefgh", 12).chars().count(), 8);
        assert_eq!(fit_middle("abcdefghijklmnop", 7).chars().count(), 7);
    }

    #[test]
    fn wrap_breaks_on_words_and_marks_overflow() {
        assert_eq!(
            wrap("Codec Zero not found. Run setup", 12, 3),
            vec!["Codec Zero", "not found.", "Run setup"]
        );
        assert_eq!(wrap("abcdefghij", 4, 5), vec!["abcd", "efgh", "ij"]);
        let w = wrap("one two three four five six", 9, 2);
        assert_eq!(w, vec!["one two", "three.."]);
        assert!(wrap("", 10, 3).is_empty());
        for line in wrap(&"word ".repeat(100), 18, 3) {
            assert!(line.chars().count() <= 18, "{line}");
        }
    }

    #[test]
    fn clip_counts_read_naturally() {
        assert_eq!(clips(0), "0 clips");
        assert_eq!(clips(1), "1 clip");
        assert_eq!(clips(12), "12 clips");
    }

    #[test]
    fn magnified_draws_blocks() {
        let mut fb = Framebuffer::new(8, 8);
        let mut mag = Magnified::new(&mut fb, Point::new(2, 2), 3);
        Pixel(Point::new(0, 0), BinaryColor::On)
            .draw(&mut mag)
            .unwrap();
        assert_eq!(fb.pixels().iter().filter(|p| **p).count(), 9);
        assert!(fb.get(2, 2) && fb.get(4, 4) && !fb.get(5, 5) && !fb.get(1, 1));
    }

    #[test]
    fn gauge_fill_follows_fraction() {
        let count = |f: f32| {
            let mut fb = Framebuffer::new(40, 10);
            gauge(&mut fb, Point::zero(), Size::new(24, 8), f).unwrap();
            fb.pixels().iter().filter(|p| **p).count()
        };
        let outline = count(0.0);
        assert_eq!(count(f32::NAN), outline);
        assert_eq!(count(1.0) - outline, 20 * 4);
        assert_eq!(count(0.5) - outline, 10 * 4);
        assert_eq!(count(9.0), count(1.0));
    }
}
