//! An in-memory 1-bit draw target.
//!
//! Screenshots, golden tests and the SSD1306 byte-decoding test all need "the picture" as a
//! plain value they can compare; this is it. It deliberately knows nothing about PNG or I2C.

use std::convert::Infallible;

use embedded_graphics::{pixelcolor::BinaryColor, prelude::*};

/// A `width` x `height` grid of on/off pixels, row-major, `true` = lit.
#[derive(Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    pixels: Vec<bool>,
}

impl Framebuffer {
    /// A dark framebuffer.
    pub fn new(width: u32, height: u32) -> Framebuffer {
        Framebuffer {
            width,
            height,
            pixels: vec![false; (width as usize) * (height as usize)],
        }
    }

    /// Builds one from row-major pixels; `None` if the count does not match the size.
    pub fn from_pixels(width: u32, height: u32, pixels: Vec<bool>) -> Option<Framebuffer> {
        (pixels.len() == (width as usize) * (height as usize)).then_some(Framebuffer {
            width,
            height,
            pixels,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Row-major pixels, `true` = lit.
    pub fn pixels(&self) -> &[bool] {
        &self.pixels
    }

    /// The pixel at (x, y); off outside the buffer.
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x < self.width && y < self.height {
            self.pixels[(y * self.width + x) as usize]
        } else {
            false
        }
    }

    /// Sets the pixel at (x, y); ignored outside the buffer.
    pub fn set(&mut self, x: u32, y: u32, on: bool) {
        if x < self.width && y < self.height {
            self.pixels[(y * self.width + x) as usize] = on;
        }
    }

    /// How many pixels differ from `other` (all of them if the sizes differ).
    pub fn diff_count(&self, other: &Framebuffer) -> usize {
        if self.width != other.width || self.height != other.height {
            return self.pixels.len().max(other.pixels.len());
        }
        self.pixels
            .iter()
            .zip(&other.pixels)
            .filter(|(a, b)| a != b)
            .count()
    }

    /// The picture as text, `#` lit and `.` dark: readable in a failing test's output.
    pub fn to_ascii(&self) -> String {
        let mut out = String::with_capacity(self.pixels.len() + self.height as usize);
        for row in self.pixels.chunks(self.width.max(1) as usize) {
            out.extend(row.iter().map(|p| if *p { '#' } else { '.' }));
            out.push('\n');
        }
        out
    }
}

impl std::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Framebuffer {}x{}", self.width, self.height)?;
        f.write_str(&self.to_ascii())
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Framebuffer {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, color) in pixels {
            if p.x >= 0 && p.y >= 0 {
                self.set(p.x as u32, p.y as u32, color.is_on());
            }
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        self.pixels.fill(color.is_on());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    #[test]
    fn draws_and_clips() {
        let mut fb = Framebuffer::new(4, 3);
        Rectangle::new(Point::new(-2, 1), Size::new(4, 10))
            .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
            .draw(&mut fb)
            .unwrap();
        assert_eq!(fb.to_ascii(), "....\n##..\n##..\n");
        assert!(!fb.get(100, 100));
    }

    #[test]
    fn from_pixels_checks_length() {
        assert!(Framebuffer::from_pixels(2, 2, vec![true; 3]).is_none());
        let fb = Framebuffer::from_pixels(2, 2, vec![true, false, false, true]).unwrap();
        assert!(fb.get(0, 0) && fb.get(1, 1) && !fb.get(1, 0));
        assert_eq!(fb.diff_count(&Framebuffer::new(2, 2)), 2);
        assert_eq!(fb.diff_count(&Framebuffer::new(3, 2)), 6);
    }
}
