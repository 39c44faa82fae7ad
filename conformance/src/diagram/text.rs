//! The plain-text renderer: one line per row, lanes as columns of `|`, the
//! label of every row in one column to the right of the lanes.
//!
//! ```text
//!    step        time  A:platform   A#1
//!      30   100.000ms      |---------->|  TRANSITION_ACTIVE #4
//!      31   100.000ms      |<..........|  TRANSITION_ACTIVE #4 returns ERROR_IO_PENDING
//! !!   32   100.000ms      |           X  !! COMP-6 completed with status ERROR_IO_PENDING
//! >>   33   100.000ms      |<==========|  [COMP-6] complete TRANSITION_ACTIVE #4: E_FAIL
//! ```
//!
//! Line styles: `-` callback calls and the provider's calls into the
//! platform, `.` returns, `=` completions, `~` applications. `*` is a note on
//! a lane, `X` a violation. In the gutter, `>>` marks the violating arrow,
//! `!!` a violation and `> ` a focused event that is neither.

use super::{elided_label, EventRow, Layout, Row, Shape, Style};

/// Space between two lane names in the header.
const GAP: usize = 3;

pub(super) fn render(layout: &Layout) -> String {
    // Column of each lane's name, and of its lifeline (under the name's middle).
    let mut starts = Vec::with_capacity(layout.lanes.len());
    let mut centres = Vec::with_capacity(layout.lanes.len());
    let mut x = 0;
    for lane in &layout.lanes {
        let w = lane.name.chars().count();
        starts.push(x);
        centres.push(x + w.saturating_sub(1) / 2);
        x += w + GAP;
    }
    let width = x.saturating_sub(GAP).max(1);

    let mut out = String::new();
    let mut header = vec![' '; width];
    for (lane, &s) in layout.lanes.iter().zip(&starts) {
        for (k, c) in lane.name.chars().enumerate() {
            header[s + k] = c;
        }
    }
    push_line(
        &mut out,
        &format!("{:2} {:>5} {:>11}  ", "", "step", "time"),
        &header,
        "",
    );

    for row in &layout.rows {
        match row {
            Row::Elided(n) => {
                let mut lanes = vec![' '; width];
                for &c in &centres {
                    lanes[c] = ':';
                }
                push_line(&mut out, &" ".repeat(22), &lanes, &elided_label(*n));
            }
            Row::Event(r) => {
                let lanes = draw(r, &centres, width);
                let marker = match (r.violating.is_some(), r.style, r.focused) {
                    (true, _, _) => ">>",
                    (false, Style::Violation, _) => "!!",
                    (false, _, true) => "> ",
                    _ => "",
                };
                let step = r.step.map_or_else(|| "-".to_string(), |s| s.to_string());
                let gutter = format!("{marker:2} {step:>5} {:>11}  ", r.at);
                let label = match r.violating {
                    Some(Some(rule)) => format!("[{rule}] {}", r.label),
                    _ => r.label.clone(),
                };
                push_line(&mut out, &gutter, &lanes, &label);
            }
        }
    }
    out
}

/// The lane area of one event row.
fn draw(r: &EventRow, centres: &[usize], width: usize) -> Vec<char> {
    let mut lanes = vec![' '; width];
    for &c in centres {
        lanes[c] = '|';
    }
    match r.shape {
        Shape::Arrow(from, to) => {
            let (a, b) = (centres[from], centres[to]);
            let line = match r.style {
                Style::Return => '.',
                Style::Complete => '=',
                Style::App => '~',
                _ => '-',
            };
            let (lo, hi) = (a.min(b), a.max(b));
            for cell in lanes.iter_mut().take(hi).skip(lo + 1) {
                *cell = line;
            }
            if b > a && hi > lo + 1 {
                lanes[hi - 1] = '>';
            } else if b < a && hi > lo + 1 {
                lanes[lo + 1] = '<';
            }
        }
        Shape::Note(l) => {
            lanes[centres[l]] = if r.style == Style::Violation {
                'X'
            } else {
                '*'
            };
        }
    }
    lanes
}

fn push_line(out: &mut String, gutter: &str, lanes: &[char], label: &str) {
    let mut line = String::from(gutter);
    line.extend(lanes.iter());
    if !label.is_empty() {
        line.push_str("  ");
        // A label never spans lines: keep the diagram one row per event.
        line.push_str(&label.replace(['\n', '\r'], " "));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}
