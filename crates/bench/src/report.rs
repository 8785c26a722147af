//! Output: an aligned table for people, or exactly one JSON object on stdout for programs.

use anyhow::Result;
use serde::Serialize;

/// The name of our pool in the thread-pool scenarios, the reference that ratios are taken
/// against.
pub const OURS: &str = "protozoa-workers";

/// A table with a title, a header, and rows of already formatted cells.
///
/// The first column is left-aligned (names), the others right-aligned (figures).
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    /// An empty table with `title` above it and `header` as its column names.
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Table {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds one row; it should have one cell per header column.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a line printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Prints the table on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    fn render(&self) -> String {
        let columns = self.header.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let cells = self.rows.iter().filter_map(|row| row.get(c));
                cells
                    .chain([&self.header[c]])
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();

        let mut out = format!("{}\n", self.title);
        for row in [&self.header].into_iter().chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| match c {
                    0 => format!("{cell:<width$}", width = widths[0]),
                    _ => format!(
                        "{cell:>width$}",
                        width = widths.get(c).copied().unwrap_or(0)
                    ),
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        for note in &self.notes {
            out.push_str(note);
            out.push('\n');
        }
        out
    }
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// The figure ratios are taken against: that of `ours` (the name our pool has in this
/// scenario) if it ran, else the first contender's.
///
/// Returns the reference's name and figure; `None` if there are no figures at all.
pub fn reference<'a>(figures: &[(&'a str, f64)], ours: &str) -> Option<(&'a str, f64)> {
    figures
        .iter()
        .find(|(name, _)| *name == ours)
        .or(figures.first())
        .copied()
}

/// A table of one figure per contender (`unit` names its column, `decimals` its precision)
/// with a column of ratios to the reference (see [`reference`]).
///
/// Returns the table, so that the scenario can add notes, and our figure if ours (named
/// `ours` in this scenario) ran.
pub fn figure_table(
    title: String,
    unit: &str,
    decimals: usize,
    figures: &[(&str, f64)],
    ours: &str,
) -> (Table, Option<f64>) {
    let reference = reference(figures, ours);
    let header = match reference {
        Some((name, _)) if name == ours => "x ours".to_string(),
        Some((name, _)) => format!("x {name}"),
        None => "ratio".to_string(),
    };

    let mut table = Table::new(title, &["name", unit, &header]);
    for (name, figure) in figures {
        let ratio = reference.map_or_else(|| "-".to_string(), |(_, base)| ratio(*figure, base));
        table.row(vec![
            name.to_string(),
            format!("{figure:.decimals$}"),
            ratio,
        ]);
    }
    (table, figure_of(figures, ours))
}

/// The figure of the contender named `name`, if it ran.
pub fn figure_of(figures: &[(&str, f64)], name: &str) -> Option<f64> {
    figures
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, figure)| *figure)
}

/// A figure as a multiple of the reference, formatted for a table ("2.15").
pub fn ratio(figure: f64, reference: f64) -> String {
    if reference > 0.0 {
        format!("{:.2}", figure / reference)
    } else {
        "-".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_names_left_and_figures_right() {
        let mut table = Table::new("t", &["name", "ns"]);
        table.row(vec!["rayon".into(), "440.0".into()]);
        table.row(vec!["protozoa-workers".into(), "9.5".into()]);
        let text = table.render();
        assert!(text.contains("rayon             440.0\n"), "{text}");
        assert!(text.contains("protozoa-workers    9.5\n"), "{text}");
    }

    #[test]
    fn reference_prefers_ours_and_falls_back_to_the_first() {
        let with_ours = [("rayon", 2.0), (OURS, 1.0)];
        assert_eq!(reference(&with_ours, OURS), Some((OURS, 1.0)));
        assert_eq!(reference(&[("rayon", 2.0)], OURS), Some(("rayon", 2.0)));
        assert_eq!(reference(&[], OURS), None);
    }
}
