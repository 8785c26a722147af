//! The picture of a scene's final frame: one glowing cluster per creature, laid out on a grid
//! of dark dishes, each labelled with its block height, under a title and a legend of roles.
//!
//! Light is gathered in floating point: every particle adds a soft disc (a bright core and a
//! wide faint halo) of its role colour, weighted by its opacity; the sum is then compressed
//! (`x / (1 + x)`) so that dense spots glow white instead of clipping, and laid over the
//! background. Text uses the bitmap font of [`crate::font`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::creature::Role;
use crate::font;
use crate::grid::point;
use crate::physics::DISH_RADIUS;

/// One creature's render buffers, as `prepareRender` filled them.
pub struct CreatureView<'a> {
    /// The block height, the creature's label.
    pub height: u64,
    /// Where the creature's frame sits in the world.
    pub offset: [f32; 3],
    pub positions: &'a [f32],
    pub scales: &'a [f32],
    pub colours: &'a [f32],
    pub opacities: &'a [f32],
}

/// An RGB picture, eight bits a channel.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// Why the picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: PathBuf,
        source: png::EncodingError,
    },
}

const PAD: usize = 28;
const HEADER: usize = 86;

/// Where things go on the canvas.
struct Layout {
    columns: usize,
    tile: usize,
}

impl Layout {
    fn new(creatures: usize) -> Self {
        let columns = (1..).find(|c| c * c >= creatures.max(1)).unwrap_or(1);
        let tile = (1600 / columns).clamp(150, 380);
        Self { columns, tile }
    }

    fn size(&self, creatures: usize) -> (usize, usize) {
        let rows = creatures.max(1).div_ceil(self.columns);
        let width = (self.columns * self.tile + 2 * PAD).max(760);
        (width, HEADER + rows * self.tile + PAD)
    }

    /// The centre of creature `k`'s dish, in pixels.
    fn centre(&self, k: usize) -> (f32, f32) {
        let (col, row) = (k % self.columns, k / self.columns);
        let x = PAD + col * self.tile + self.tile / 2;
        let y = HEADER + row * self.tile + self.tile / 2 - self.tile / 20;
        (x as f32, y as f32)
    }

    /// Pixels per world unit.
    fn zoom(&self) -> f32 {
        self.tile as f32 * 0.43 / DISH_RADIUS
    }
}

/// A floating-point canvas.
struct Canvas {
    width: usize,
    height: usize,
    base: Vec<[f32; 3]>,
    light: Vec<[f32; 3]>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        let base = (0..width * height)
            .map(|i| {
                let t = (i / width) as f32 / height as f32;
                [0.024 - 0.012 * t, 0.030 - 0.014 * t, 0.070 - 0.030 * t]
            })
            .collect();
        Self {
            width,
            height,
            base,
            light: vec![[0.0; 3]; width * height],
        }
    }

    /// Blends `colour` over the background at `(x, y)` with weight `alpha`.
    fn paint(&mut self, x: isize, y: isize, colour: [f32; 3], alpha: f32) {
        if let Some(i) = self.index(x, y) {
            let p = &mut self.base[i];
            for k in 0..3 {
                p[k] += (colour[k] - p[k]) * alpha;
            }
        }
    }

    /// Adds light of `colour` times `amount` at `(x, y)`.
    fn glow(&mut self, x: isize, y: isize, colour: [f32; 3], amount: f32) {
        if let Some(i) = self.index(x, y) {
            let p = &mut self.light[i];
            for k in 0..3 {
                p[k] += colour[k] * amount;
            }
        }
    }

    fn index(&self, x: isize, y: isize) -> Option<usize> {
        let inside = x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height;
        inside.then(|| y as usize * self.width + x as usize)
    }

    /// Compresses the light and lays it over the background.
    fn finish(self) -> Picture {
        let mut rgb = Vec::with_capacity(self.width * self.height * 3);
        for (base, light) in self.base.iter().zip(&self.light) {
            for k in 0..3 {
                let v = base[k] + light[k] / (1.0 + light[k]);
                rgb.push((v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
            }
        }
        Picture {
            width: self.width,
            height: self.height,
            rgb,
        }
    }
}

/// Draws the scene's creatures at frame `frame`.
pub fn draw(creatures: &[CreatureView<'_>], frame: u64) -> Picture {
    let layout = Layout::new(creatures.len());
    let (width, height) = layout.size(creatures.len());
    let mut canvas = Canvas::new(width, height);

    header(&mut canvas, creatures.len(), frame);
    for (k, creature) in creatures.iter().enumerate() {
        dish(&mut canvas, &layout, k, creature.height);
        particles(&mut canvas, &layout, k, creature);
    }
    canvas.finish()
}

/// Draws the scene and writes it as a PNG file at `path`.
pub fn write_png(
    creatures: &[CreatureView<'_>],
    frame: u64,
    path: &Path,
) -> Result<(), ImageError> {
    let picture = draw(creatures, frame);
    let io = |source| ImageError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    encode(&picture, BufWriter::new(file)).map_err(|source| match source {
        png::EncodingError::IoError(source) => io(source),
        source => ImageError::Encode {
            path: path.to_owned(),
            source,
        },
    })
}

/// Encodes `picture` as PNG into `out`.
pub fn encode(picture: &Picture, out: impl Write) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, picture.width as u32, picture.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&picture.rgb)?;
    writer.finish()
}

/// The title, the scene's size and a legend of role colours.
fn header(canvas: &mut Canvas, creatures: usize, frame: u64) {
    let title = [0.92, 0.94, 1.0];
    let dim = [0.50, 0.56, 0.72];
    text(canvas, "BITCOIN PROTOZOA", PAD, 22, 3, title);
    let plural = if creatures == 1 { "" } else { "S" };
    let info = format!("{creatures} CREATURE{plural} - FRAME {frame}");
    let info_x = canvas
        .width
        .saturating_sub(PAD + font::text_width(&info) * 2);
    text(canvas, &info, info_x, 30, 2, dim);

    let mut x = PAD;
    for role in Role::ALL {
        let colour = role.base_colour();
        splat(canvas, (x + 5) as f32, 66.0, 3.5, colour, 1.0);
        text(canvas, role.name(), x + 16, 60, 2, dim);
        x += 16 + font::text_width(role.name()) * 2 + 28;
    }
}

/// A creature's dish: a faint disc with a rim, and the block height under it.
fn dish(canvas: &mut Canvas, layout: &Layout, k: usize, height: u64) {
    let (cx, cy) = layout.centre(k);
    let radius = DISH_RADIUS * layout.zoom() + 6.0;
    let reach = radius as isize + 2;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let d = ((dx * dx + dy * dy) as f32).sqrt();
            let inside = (radius - d).clamp(0.0, 1.0);
            let rim = (1.0 - (d - radius).abs()).max(0.0);
            let (x, y) = (cx as isize + dx, cy as isize + dy);
            canvas.paint(
                x,
                y,
                [0.045, 0.060, 0.120],
                0.55 * inside * (1.0 - d / radius * 0.6),
            );
            canvas.paint(x, y, [0.16, 0.20, 0.34], 0.7 * rim);
        }
    }

    let label = format!("#{height}");
    let scale = if layout.tile >= 200 { 2 } else { 1 };
    let x = cx as usize - font::text_width(&label) * scale / 2;
    let y = cy as usize + radius as usize + 6;
    text(canvas, &label, x, y, scale, [0.62, 0.68, 0.86]);
}

/// A creature's particles as soft glowing discs.
fn particles(canvas: &mut Canvas, layout: &Layout, k: usize, c: &CreatureView<'_>) {
    let (cx, cy) = layout.centre(k);
    let zoom = layout.zoom();
    let size = layout.tile as f32 / 230.0;
    for (i, (&scale, &opacity)) in c.scales.iter().zip(c.opacities).enumerate() {
        let p = point(c.positions, i);
        let (x, y) = (
            cx + (p[0] - c.offset[0]) * zoom,
            cy - (p[1] - c.offset[1]) * zoom,
        );
        splat(
            canvas,
            x,
            y,
            1.5 * size * scale,
            point(c.colours, i),
            opacity,
        );
    }
}

/// Adds one soft disc of light: a core of `radius` and a halo four times as wide.
fn splat(canvas: &mut Canvas, x: f32, y: f32, radius: f32, colour: [f32; 3], amount: f32) {
    let halo = 4.0 * radius;
    let reach = halo.ceil() as isize;
    let (px, py) = (x.floor() as isize, y.floor() as isize);
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (fx, fy) = ((px + dx) as f32 + 0.5 - x, (py + dy) as f32 + 0.5 - y);
            let d = (fx * fx + fy * fy).sqrt();
            let core = (1.0 - (d / radius).powi(2)).max(0.0).powi(2);
            let glow = 0.16 * (1.0 - d / halo).max(0.0).powi(2);
            if core + glow > 0.0 {
                canvas.glow(px + dx, py + dy, colour, amount * (core + glow));
            }
        }
    }
}

/// Writes `s` with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
fn text(canvas: &mut Canvas, s: &str, x: usize, y: usize, scale: usize, colour: [f32; 3]) {
    for (n, c) in s.chars().enumerate() {
        let left = x + n * font::ADVANCE * scale;
        for gy in 0..font::GLYPH_HEIGHT * scale {
            for gx in 0..font::GLYPH_WIDTH * scale {
                if font::lit(c, gx / scale, gy / scale) {
                    canvas.paint((left + gx) as isize, (y + gy) as isize, colour, 0.95);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(positions: &'a [f32], colours: &'a [f32], ones: &'a [f32]) -> CreatureView<'a> {
        CreatureView {
            height: 878_976,
            offset: [0.0; 3],
            positions,
            scales: ones,
            colours,
            opacities: ones,
        }
    }

    #[test]
    fn picture_has_one_tile_per_creature_and_lit_particles() {
        let (positions, colours, ones) = ([0.0; 3], [1.0, 0.0, 0.0], [1.0]);
        let picture = draw(&[view(&positions, &colours, &ones)], 600);
        assert_eq!(picture.rgb.len(), picture.width * picture.height * 3);

        // The particle sits at the dish centre: that pixel is bright and red.
        let layout = Layout::new(1);
        let (cx, cy) = layout.centre(0);
        let i = (cy as usize * picture.width + cx as usize) * 3;
        assert!(picture.rgb[i] > 80 && picture.rgb[i] > picture.rgb[i + 1]);
    }

    #[test]
    fn picture_encodes_as_png() {
        let (positions, colours, ones) = ([0.0; 3], [0.0, 1.0, 0.0], [1.0]);
        let picture = draw(&[view(&positions, &colours, &ones)], 1);
        let mut bytes = Vec::new();
        encode(&picture, &mut bytes).expect("encoding into memory succeeds");
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn unwritable_path_is_an_io_error() {
        let (positions, colours, ones) = ([0.0; 3], [0.0, 1.0, 0.0], [1.0]);
        let path = Path::new("/nonexistent-dir/protozoa.png");
        let err = write_png(&[view(&positions, &colours, &ones)], 1, path)
            .expect_err("the folder does not exist");
        assert!(matches!(err, ImageError::Io { .. }));
    }
}
