//! The markdown report and its number formats.

use std::fmt::Write as _;

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<[String; 7]>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// One table row: test, metric, then up to five cells (NATSBridge, floor / reference, ratio,
    /// target, status); missing cells are empty.
    pub(crate) fn row(&mut self, test: &str, metric: &str, cells: &[&str]) {
        let mut row: [String; 7] = Default::default();
        row[0] = test.into();
        row[1] = metric.into();
        for (slot, cell) in row[2..].iter_mut().zip(cells) {
            *slot = (*cell).into();
        }
        self.rows.push(row);
    }

    pub(crate) fn markdown(&self, header: &str) -> String {
        let mut s = String::new();
        writeln!(s, "{header}\n").unwrap();
        writeln!(s, "| Test | Metric | NATSBridge | Floor / reference | Ratio | Target | Status |").unwrap();
        writeln!(s, "|---|---|---:|---:|---:|---|---|").unwrap();
        for r in &self.rows {
            writeln!(s, "| {} |", r.join(" | ")).unwrap();
        }
        if !self.notes.is_empty() {
            writeln!(s).unwrap();
            for n in &self.notes {
                writeln!(s, "- {n}").unwrap();
            }
        }
        s
    }
}

pub(crate) fn status(met: bool, how: String) -> String {
    if met { format!("met ({how})") } else { format!("**missed** ({how})") }
}

pub(crate) fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) fn times(x: f64, y: f64) -> String {
    format!("{:.2}x", x / y)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
