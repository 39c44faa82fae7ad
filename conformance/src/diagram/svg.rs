//! The SVG renderer: lane headers in boxes, lifelines as vertical lines, one
//! row per event with its step and time in a left gutter, arrows with
//! arrowheads and a label above them, notes as dots with their text beside.
//!
//! The violating arrow is red and labelled with the rule ID; violation rows
//! are red text on a pink band. Arrowheads are plain polygons rather than
//! `<marker>`s, so that many diagrams can share one HTML page without their
//! element IDs clashing. Every piece of text is XML-escaped.

use super::{elided_label, EventRow, LaneKind, Layout, Row, Shape, Style};
use std::fmt::Write;

/// Font size, and the width of one character of the monospace font (an
/// estimate: 0.6 em is right for the usual monospace faces).
const FONT: f64 = 12.0;
const CH: f64 = 7.2;
const ROW_H: f64 = 26.0;
const HEAD_Y: f64 = 8.0;
const HEAD_H: f64 = 24.0;
/// Top of the first row.
const ROWS_Y: f64 = HEAD_Y + HEAD_H + 10.0;
/// Left edge of the lanes (the gutter holds step and time).
const LANES_X: f64 = 140.0;
const STEP_X: f64 = 44.0;
const TIME_X: f64 = 124.0;

const RED: &str = "#c81e1e";
const RED_BAND: &str = "#fde8e8";
const FOCUS_BAND: &str = "#fff6d5";
const LIFELINE: &str = "#b8bec8";

/// Escapes text for XML character data and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CH
}

/// Stroke colour and dash pattern of an arrow style.
fn stroke(style: Style) -> (&'static str, Option<&'static str>) {
    match style {
        Style::Call => ("#1f4e8c", None),
        Style::Return => ("#6b7280", Some("5,3")),
        Style::Complete => ("#0f7b5f", None),
        Style::Function => ("#7b3fa0", None),
        Style::App => ("#b45309", Some("2,3")),
        Style::Note => ("#6b7280", None),
        Style::Violation => (RED, None),
    }
}

/// A line from `x1` to `x2` at height `y` with an arrowhead at `x2`.
fn arrow(out: &mut String, x1: f64, x2: f64, y: f64, colour: &str, dash: Option<&str>, width: f64) {
    let dir = if x2 >= x1 { 1.0 } else { -1.0 };
    let head = 8.0;
    let end = x2 - dir * head;
    let dash = dash
        .map(|d| format!(" stroke-dasharray=\"{d}\""))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        r#"<line x1="{x1:.1}" y1="{y:.1}" x2="{end:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="{width}"{dash}/>"#
    );
    let _ = writeln!(
        out,
        r#"<polygon points="{x2:.1},{y:.1} {end:.1},{:.1} {end:.1},{:.1}" fill="{colour}"/>"#,
        y - 4.0,
        y + 4.0
    );
}

pub(super) fn render(layout: &Layout) -> String {
    let widest = layout
        .lanes
        .iter()
        .map(|l| text_width(&l.name))
        .fold(0.0, f64::max);
    let spacing = (widest + 36.0).max(130.0);
    let centre = |i: usize| LANES_X + spacing * (i as f64 + 0.5);
    let lanes_end = LANES_X + spacing * layout.lanes.len() as f64;
    let row_top = |i: usize| ROWS_Y + ROW_H * i as f64;
    let rows_end = row_top(layout.rows.len());

    // Rows first, into their own buffer, measuring the widest label.
    let mut body = String::new();
    let mut right = lanes_end;
    for (i, row) in layout.rows.iter().enumerate() {
        let top = row_top(i);
        match row {
            Row::Elided(n) => {
                let label = elided_label(*n);
                let x = (LANES_X + lanes_end) / 2.0;
                let w = text_width(&label) + 12.0;
                let _ = writeln!(
                    body,
                    r##"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="17" rx="8" fill="#f3f4f6"/>"##,
                    x - w / 2.0,
                    top + 4.5
                );
                let _ = writeln!(
                    body,
                    r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#6b7280" font-style="italic">{}</text>"##,
                    top + 17.0,
                    escape(&label)
                );
            }
            Row::Event(r) => {
                let end = event_row(&mut body, r, top, &centre, lanes_end);
                right = right.max(end);
            }
        }
    }

    let legend_y = rows_end + 18.0;
    let (legend, legend_end) = legend(legend_y);
    right = right.max(legend_end);
    let width = (right + 16.0).ceil();
    let height = (legend_y + 20.0).ceil();

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="{FONT}" role="img">"#
    );
    out.push_str("<title>Sequence diagram of a trace</title>\n");
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    // Bands behind highlighted rows.
    for (i, row) in layout.rows.iter().enumerate() {
        if let Row::Event(r) = row {
            if let Some(fill) = band(r) {
                let _ = writeln!(
                    out,
                    r#"<rect x="0" y="{:.1}" width="{width}" height="{ROW_H}" fill="{fill}"/>"#,
                    row_top(i)
                );
            }
        }
    }
    // Lane headers and lifelines (dotted across cuts).
    for (i, lane) in layout.lanes.iter().enumerate() {
        let x = centre(i);
        let w = text_width(&lane.name) + 16.0;
        let fill = match lane.kind {
            LaneKind::App => "#fdf1dc",
            LaneKind::Platform => "#e3ebf7",
            LaneKind::Instance(_) => "#e2f3e8",
        };
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{HEAD_Y}" width="{w:.1}" height="{HEAD_H}" rx="4" fill="{fill}" stroke="#8a94a6"/>"##,
            x - w / 2.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold" fill="#1f2937">{}</text>"##,
            HEAD_Y + 16.0,
            escape(&lane.name)
        );
        let mut y = HEAD_Y + HEAD_H;
        for (k, row) in layout.rows.iter().enumerate() {
            let bottom = row_top(k) + ROW_H;
            let dash = if matches!(row, Row::Elided(_)) {
                r#" stroke-dasharray="2,4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{LIFELINE}" stroke-width="1.5"{dash}/>"#
            );
            y = bottom;
        }
    }
    // Step and time column titles.
    let _ = writeln!(
        out,
        r##"<text x="{STEP_X}" y="{:.1}" text-anchor="end" fill="#6b7280">step</text><text x="{TIME_X}" y="{:.1}" text-anchor="end" fill="#6b7280">time</text>"##,
        HEAD_Y + 16.0,
        HEAD_Y + 16.0
    );
    out.push_str(&body);
    out.push_str(&legend);
    out.push_str("</svg>\n");
    out
}

/// The background of a highlighted row.
fn band(r: &EventRow) -> Option<&'static str> {
    if r.violating.is_some() || r.style == Style::Violation {
        Some(RED_BAND)
    } else if r.focused {
        Some(FOCUS_BAND)
    } else {
        None
    }
}

/// A label on a patch of the row's background, so that the lifelines it
/// crosses do not run through its letters. `y` is the text's baseline.
fn label(out: &mut String, x: f64, y: f64, r: &EventRow, tag: &str, colour: &str, bold: bool) {
    let width = text_width(tag) + text_width(&r.label);
    let _ = writeln!(
        out,
        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="15" fill="{}"/>"#,
        x - 3.0,
        y - 11.5,
        width + 6.0,
        band(r).unwrap_or("#ffffff")
    );
    let weight = if bold { r#" font-weight="bold""# } else { "" };
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" fill="{colour}"{weight}>{}{}</text>"#,
        escape(tag),
        escape(&r.label)
    );
}

/// Draws one event row; returns the right edge of what it drew.
fn event_row(
    out: &mut String,
    r: &EventRow,
    top: f64,
    centre: &dyn Fn(usize) -> f64,
    lanes_end: f64,
) -> f64 {
    let step = r.step.map_or_else(|| "-".to_string(), |s| s.to_string());
    let _ = writeln!(
        out,
        r##"<text x="{STEP_X}" y="{:.1}" text-anchor="end" fill="#4b5563">{}</text><text x="{TIME_X}" y="{:.1}" text-anchor="end" fill="#9ca3af">{}</text>"##,
        top + 17.0,
        escape(&step),
        top + 17.0,
        escape(&r.at)
    );
    let tag = match r.violating {
        Some(Some(rule)) => format!("{rule} "),
        _ => String::new(),
    };
    let bold = r.violating.is_some() || r.style == Style::Violation;
    let (colour, dash) = if r.violating.is_some() {
        (RED, stroke(r.style).1)
    } else {
        stroke(r.style)
    };
    let text_colour = if bold { RED } else { "#111827" };
    match r.shape {
        Shape::Arrow(from, to) => {
            let (a, b) = (centre(from), centre(to));
            let y = top + 19.0;
            let width = if r.violating.is_some() { 2.5 } else { 1.5 };
            arrow(out, a, b, y, colour, dash, width);
            let x = a.min(b) + 8.0;
            label(out, x, top + 13.0, r, &tag, text_colour, bold);
            x + text_width(&tag) + text_width(&r.label)
        }
        Shape::Note(l) => {
            let x = centre(l);
            let y = top + 13.0;
            if r.style == Style::Violation {
                let _ = writeln!(
                    out,
                    r#"<path d="M{:.1},{:.1} l10,10 m0,-10 l-10,10" stroke="{RED}" stroke-width="2.5"/>"#,
                    x - 5.0,
                    y - 5.0
                );
            } else {
                let _ = writeln!(
                    out,
                    r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}" stroke="#ffffff"/>"##
                );
            }
            let tx = x + 10.0;
            label(out, tx, top + 17.0, r, "", text_colour, bold);
            (tx + text_width(&r.label)).max(lanes_end)
        }
    }
}

/// A one-line key to the arrow styles; returns it and its right edge.
fn legend(y: f64) -> (String, f64) {
    let items = [
        (Style::Call, "callback call"),
        (Style::Return, "return"),
        (Style::Complete, "completion"),
        (Style::Function, "platform function"),
        (Style::App, "application"),
        (Style::Violation, "violation"),
    ];
    let mut out = String::new();
    let mut x = 12.0;
    for (style, name) in items {
        let (colour, dash) = stroke(style);
        let width = if style == Style::Violation { 2.5 } else { 1.5 };
        arrow(&mut out, x, x + 28.0, y, colour, dash, width);
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#4b5563">{}</text>"##,
            x + 34.0,
            y + 4.0,
            escape(name)
        );
        x += 34.0 + text_width(name) + 22.0;
    }
    (out, x)
}
