//! Sequence diagrams of a [`Trace`]: as plain text for terminals and test
//! failure messages ([`text`]), and as an inline SVG for the HTML report
//! ([`svg`]).
//!
//! Both renderers share one layout, built here:
//!
//! - **Lanes** (columns): for every host that appears, `A:app` (the
//!   applications on that host, only when they appear), `A:platform`, then
//!   each provider instance `A#1`, `A#2`, … in order.
//! - **Rows**: one per trace event, in trace order. Callback calls go from the
//!   platform to the instance; returns, completions and the provider's calls
//!   into the platform go the other way; application sends and receives go
//!   between `A:app` and `A:platform`. Everything else (state changes,
//!   registrations, notes, violations) is a note on one lane.
//! - **Focus**: the step to highlight. When it is a violation event, the
//!   event that broke the rule (its *act*: the call of the violation's
//!   function or callback that the detector judged, found where that
//!   detector records it, just after the violation or just before; see
//!   `Act`) is drawn as the *violating arrow*, tagged with the rule ID.
//!   A violation with no act in the trace (something that never happened)
//!   has no violating arrow: its own row is the one marked. When only a
//!   step is given, the nearest earlier arrow of the violation's instance
//!   stands in. When the focus is an ordinary event, that event is the
//!   violating arrow, and the rule comes from a violation event right after
//!   it, if any.
//! - **Window**: a long trace is cut to the events around the focus; the rest
//!   is summarised by `… N events …` rows.
//!
//! [`text_for`] and [`svg_for`] take a [`Violation`] instead of a bare step,
//! so that a violation known only from a report (with no violation event in
//! the trace) still gets its arrow tagged and its message shown.

pub(crate) mod svg;
mod text;

use cpsim_sim::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use cpsim_sim::trace::{hr_name, Activity, Event, What};
use cpsim_sim::{Callback, RuleId, Trace, Violation};

/// A text sequence diagram of `trace`.
///
/// `highlight_step` picks the event to centre on and to mark (see the module
/// docs); `window` is the most events shown (0: all of them). Lines carry no
/// trailing spaces and no terminal escapes, so the result can go straight into
/// an assertion message or a JUnit failure body.
pub fn text(trace: &Trace, highlight_step: Option<u64>, window: usize) -> String {
    let focus = highlight_step.map(|step| Focus {
        step,
        rule: None,
        callback: None,
        message: None,
    });
    text::render(&Layout::build(trace, focus, window))
}

/// Like [`text`], centred on a violation and tagging the arrow with its rule,
/// even when the trace holds no violation event for it.
pub fn text_for(trace: &Trace, violation: &Violation, window: usize) -> String {
    text::render(&Layout::build(trace, Some(Focus::of(violation)), window))
}

/// The same diagram as [`text`], as a self-contained `<svg>` element (no
/// scripts, no external references) to inline in HTML.
///
/// `max_events` is the most events drawn (0: all of them).
pub fn svg(trace: &Trace, highlight_step: Option<u64>, max_events: usize) -> String {
    let focus = highlight_step.map(|step| Focus {
        step,
        rule: None,
        callback: None,
        message: None,
    });
    svg::render(&Layout::build(trace, focus, max_events))
}

/// Like [`svg`], centred on a violation, with its arrow drawn in red and
/// labelled with the rule ID.
pub fn svg_for(trace: &Trace, violation: &Violation, max_events: usize) -> String {
    svg::render(&Layout::build(
        trace,
        Some(Focus::of(violation)),
        max_events,
    ))
}

/// What to highlight.
struct Focus {
    step: u64,
    /// The broken rule, when the caller knows it.
    rule: Option<RuleId>,
    /// The callback or function the violation names (helps find its arrow).
    callback: Option<String>,
    /// The violation's message, shown if the trace has no event for it.
    message: Option<String>,
}

impl Focus {
    fn of(v: &Violation) -> Focus {
        Focus {
            step: v.step,
            rule: Some(v.rule),
            callback: v.callback.clone(),
            message: Some(v.message.clone()),
        }
    }
}

/// Which column a lane is, within its host.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum LaneKind {
    App,
    Platform,
    Instance(u32),
}

/// One column of the diagram.
#[derive(Clone, Debug)]
struct Lane {
    host: u8,
    kind: LaneKind,
    name: String,
}

/// How a row is drawn.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Style {
    /// The platform calls a provider callback.
    Call,
    /// A callback returns.
    Return,
    /// A pended call is completed (either direction).
    Complete,
    /// The provider calls a platform function.
    Function,
    /// An application sends, receives or listens.
    App,
    /// A note on one lane.
    Note,
    /// A broken rule.
    Violation,
}

#[derive(Copy, Clone, Debug)]
enum Shape {
    /// From lane, to lane (indices into `Layout::lanes`).
    Arrow(usize, usize),
    Note(usize),
}

#[derive(Clone, Debug)]
enum Row {
    /// `n` events left out.
    Elided(usize),
    Event(EventRow),
}

#[derive(Clone, Debug)]
struct EventRow {
    /// None for a violation the trace has no event for.
    step: Option<u64>,
    at: String,
    shape: Shape,
    style: Style,
    label: String,
    /// Set on the violating arrow: the rule it broke (if known).
    violating: Option<Option<RuleId>>,
    /// The row is the focused event.
    focused: bool,
}

/// Lanes and rows, ready to draw.
struct Layout {
    lanes: Vec<Lane>,
    rows: Vec<Row>,
}

/// Where an event's row goes, before lanes are numbered.
enum Place {
    Arrow((u8, LaneKind), (u8, LaneKind)),
    Note((u8, LaneKind)),
}

fn reason_name(r: Reason) -> &'static str {
    match r {
        Reason::ProviderRequest => "PROVIDER_REQUEST",
        Reason::PlatformShutdown => "PLATFORM_SHUTDOWN",
        Reason::ProviderTimeout => "PROVIDER_TIMEOUT",
        Reason::ProviderOtherFailure => "PROVIDER_OTHER_FAILURE",
        Reason::OtherCommunicationError => "OTHER_COMMUNICATION_ERROR",
    }
}

/// `TRANSITION_ACTIVE #4` (the two indications have no call number).
fn call_name(cb: Callback, call: u32) -> String {
    if call == 0 {
        cb.name().to_string()
    } else {
        format!("{} #{call}", cb.name())
    }
}

/// Whether an event is drawn as an arrow (a candidate violating arrow).
fn is_arrow(e: &Event) -> bool {
    match &e.what {
        What::Call { .. }
        | What::Return { .. }
        | What::Complete { .. }
        | What::ProviderCompletion { .. }
        | What::AppSend { .. }
        | What::AppReceive { .. }
        | What::Listen { .. } => true,
        What::Function { .. } => e.inst != 0,
        _ => false,
    }
}

/// The callback or function name an arrow is about, to match a violation's
/// `callback` field.
fn arrow_subject(e: &Event) -> Option<&'static str> {
    match &e.what {
        What::Call { cb, .. } | What::Return { cb, .. } | What::Complete { cb, .. } => {
            Some(cb.name())
        }
        What::Function { f, .. } => Some(f.name()),
        What::ProviderCompletion { .. } => Some("CPNatfwtIndicateReceivedBuffers"),
        _ => None,
    }
}

/// An event's place, style and label.
fn describe(trace: &Trace, e: &Event) -> (Place, Style, String) {
    let h = e.host;
    let plat = (h, LaneKind::Platform);
    let app = (h, LaneKind::App);
    let inst = (h, LaneKind::Instance(e.inst));
    // The instance lane if the event names one, else the platform's.
    let own = if e.inst != 0 { inst } else { plat };
    match &e.what {
        What::ProviderStart => (Place::Note(plat), Style::Note, "provider started".into()),
        What::ProviderStop => (Place::Note(plat), Style::Note, "provider stopped".into()),
        What::Call {
            cb,
            call,
            tid,
            remote,
            bytes,
            reason,
            context_delta,
            routine,
        } => {
            let mut s = call_name(*cb, *call);
            if let Some(t) = tid {
                s.push_str(&format!(" {t}"));
            }
            if let Some(r) = remote {
                s.push_str(&format!(" -> {r}"));
            }
            if let Some(b) = bytes {
                s.push_str(&format!(" {b} B"));
            }
            if let Some(r) = reason {
                s.push_str(&format!(" ({})", reason_name(*r)));
            }
            if *context_delta != 0 {
                s.push_str(" [user context altered]");
            }
            if cb.is_async() && !*routine {
                s.push_str(" [no completion routine]");
            }
            let place = if e.inst != 0 {
                Place::Arrow(plat, inst)
            } else {
                Place::Note(plat)
            };
            (place, Style::Call, s)
        }
        What::Return { cb, call, hr } => {
            let s = match hr {
                Some(hr) => format!("{} returns {}", call_name(*cb, *call), hr_name(*hr)),
                None => format!("{} returns", call_name(*cb, *call)),
            };
            (Place::Arrow(inst, plat), Style::Return, s)
        }
        What::Complete {
            cb,
            call,
            status,
            early,
            ignored,
            args_clobbered,
        } => {
            let mut s = format!("complete {}: {}", call_name(*cb, *call), hr_name(*status));
            if *early {
                s.push_str(" [before the callback returned]");
            }
            if *ignored {
                s.push_str(" [ignored]");
            }
            if *args_clobbered {
                s.push_str(" [arguments clobbered]");
            }
            (Place::Arrow(inst, plat), Style::Complete, s)
        }
        What::Outcome { cb, call, ok } => (
            Place::Note(plat),
            Style::Note,
            format!(
                "{} read as {}",
                call_name(*cb, *call),
                if *ok { "success" } else { "failure" }
            ),
        ),
        What::Function { f, hr, detail } => {
            let mut s = format!("{} = {}", f.short(), hr_name(*hr));
            if let Some(d) = detail {
                s.push_str(&format!(" ({d})"));
            }
            if e.inst != 0 {
                (Place::Arrow(inst, plat), Style::Function, s)
            } else {
                (Place::Note(plat), Style::Function, format!("provider: {s}"))
            }
        }
        What::ArgsWritten { f } => (
            Place::Note(own),
            Style::Note,
            format!("{} wrote to the caller's strings", f.short()),
        ),
        What::ProviderCompletion { status } => (
            Place::Arrow(plat, inst),
            Style::Complete,
            format!("provider's completion routine: {}", hr_name(*status)),
        ),
        What::Registered {
            name,
            luid,
            requested_luid,
            name_was_null,
            ..
        } => {
            let mut s = format!("registered as \"{name}\", LUID 0x{luid:016X}");
            if *requested_luid != 0 {
                s.push_str(&format!(" (asked for 0x{requested_luid:016X})"));
            }
            if *name_was_null {
                s.push_str(" (default name)");
            }
            (Place::Note(own), Style::Note, s)
        }
        What::Address { tid, added } => (
            Place::Note(own),
            Style::Note,
            format!("address {tid} {}", if *added { "added" } else { "removed" }),
        ),
        What::State { to } => (
            Place::Note(own),
            Style::Note,
            format!(
                "now {}",
                match to {
                    Activity::Dormant => "dormant",
                    Activity::Active => "active",
                }
            ),
        ),
        What::SessionEnded { reason, cause } => (
            Place::Note(plat),
            Style::Note,
            format!(
                "ends the session of {}: {} ({cause})",
                trace.instance_name(h, e.inst),
                reason_name(*reason)
            ),
        ),
        What::Timeout { cb, call, excused } => (
            Place::Note(plat),
            Style::Note,
            format!(
                "timeout of {}{}",
                call_name(*cb, *call),
                if *excused { " (excused)" } else { "" }
            ),
        ),
        What::Shutdown => (Place::Note(plat), Style::Note, "platform shuts down".into()),
        What::CommunicationError => (
            Place::Note(plat),
            Style::Note,
            "infrastructure fault".into(),
        ),
        What::UnseenCause { reason } => (
            Place::Note(plat),
            Style::Note,
            format!("the platform ends the session ({reason:?}) for a cause not visible here"),
        ),
        What::AppSend { id, to, bytes } => (
            Place::Arrow(app, plat),
            Style::App,
            format!("send datagram {id}: {bytes} B to {to}"),
        ),
        What::AppReceive {
            id,
            from,
            to,
            bytes,
        } => (
            Place::Arrow(plat, app),
            Style::App,
            format!("deliver datagram {id}: {bytes} B {from} -> {to}"),
        ),
        What::AppDrop { id, why } => (
            Place::Note(plat),
            Style::Note,
            format!("drops datagram {id}: {why}"),
        ),
        What::Listen { on } => (
            Place::Arrow(app, plat),
            Style::App,
            if *on { "listen" } else { "stop listening" }.to_string(),
        ),
        What::Note { text } => (Place::Note(own), Style::Note, text.clone()),
        What::Violation { rule, message } => (
            Place::Note(own),
            Style::Violation,
            format!("!! {rule} {message}"),
        ),
    }
}

/// How far (in events) the violating arrow is looked for around a violation.
const ARROW_REACH: usize = 6;

/// Where a detector records a violation against the event it judges (its
/// *act*), so that the diagram marks that event and not another call of the
/// same callback or function nearby.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Act {
    /// A call into the platform is judged before its answer is recorded:
    /// the act is the first `Function` event of that function after the
    /// violation, at the same instant (lifecycle checks, the checks of
    /// IndicateReceivedBuffers' arguments).
    FunctionAfter,
    /// The function's answer was recorded first: the act is the nearest
    /// `Function` event of it before the violation (DATA-5, bytes matched
    /// after the indication was answered; DATA-3, a held chain re-read when
    /// it is released, long after its indication).
    FunctionBefore,
    /// A completion is judged before it is recorded (COMP-6): the act is
    /// the first completion of that callback after the violation, at the
    /// same instant.
    CompletionAfter,
    /// A callback's return, completion or outcome is recorded first: the act
    /// is the nearest arrow about that callback before the violation, at the
    /// same instant.
    CallbackBefore,
    /// Nothing in the trace is the act: something that never happened (a
    /// Deregister owed, LIFE-7) or that the trace cannot show (a completion
    /// naming no call). The violation's own row is the one to look at.
    None,
}

impl Act {
    fn of(rule: RuleId, callback: Option<&str>) -> Act {
        use cpsim_sim::rules::id;
        let Some(cb) = callback else {
            return Act::None;
        };
        if rule == id::LIFE_7 {
            return Act::None;
        }
        if cb.starts_with("CPNatfwt") {
            if rule == id::DATA_3 || rule == id::DATA_5 {
                Act::FunctionBefore
            } else {
                Act::FunctionAfter
            }
        } else if !Callback::ALL.iter().any(|c| c.name() == cb) {
            Act::None
        } else if rule == id::COMP_6 {
            Act::CompletionAfter
        } else {
            Act::CallbackBefore
        }
    }
}

/// The call number a callback's event names, if it names one.
fn call_of(e: &Event) -> Option<u32> {
    match &e.what {
        What::Call { call, .. }
        | What::Return { call, .. }
        | What::Complete { call, .. }
        | What::Timeout { call, .. }
        | What::Outcome { call, .. } => Some(*call),
        _ => None,
    }
}

/// Finds the violating arrow for the focused event at index `at`.
fn violating_arrow(trace: &Trace, at: usize, focus: &Focus) -> Option<usize> {
    let ev = &trace.events;
    let e = &ev[at];
    if !matches!(e.what, What::Violation { .. }) {
        // A plain event is itself the arrow (or a note: then nothing is).
        return is_arrow(e).then_some(at);
    }
    let same_place = |o: &Event| o.host == e.host && (e.inst == 0 || o.inst == e.inst);
    let about = |o: &Event| match (&focus.callback, arrow_subject(o)) {
        (Some(want), Some(got)) => want == got,
        _ => false,
    };
    let before = (at.saturating_sub(ARROW_REACH)..at).rev();
    let after = (at + 1)..(at + 1 + ARROW_REACH).min(ev.len());
    let now = |i: &usize| ev[*i].at == e.at;
    let Some(rule) = focus.rule else {
        // Only a step was given, not the violation: the nearest earlier
        // arrow of the same place.
        return before
            .clone()
            .find(|&i| same_place(&ev[i]) && is_arrow(&ev[i]));
    };
    let function = |o: &Event| matches!(o.what, What::Function { .. }) && about(o);
    match Act::of(rule, focus.callback.as_deref()) {
        Act::FunctionAfter => after
            .take_while(now)
            .find(|&i| same_place(&ev[i]) && function(&ev[i])),
        Act::FunctionBefore => before
            .clone()
            .find(|&i| same_place(&ev[i]) && function(&ev[i])),
        Act::CompletionAfter => after.take_while(now).find(|&i| {
            same_place(&ev[i]) && matches!(ev[i].what, What::Complete { .. }) && about(&ev[i])
        }),
        Act::CallbackBefore => {
            // A timeout recorded right before the violation names its call.
            let call = at
                .checked_sub(1)
                .map(|i| &ev[i])
                .filter(|o| same_place(o) && matches!(o.what, What::Timeout { .. }))
                .and_then(call_of);
            before.take_while(now).find(|&i| {
                let o = &ev[i];
                same_place(o)
                    && is_arrow(o)
                    && about(o)
                    && call.is_none_or(|c| call_of(o) == Some(c))
            })
        }
        Act::None => None,
    }
}

/// Picks `[lo, hi)` of at most `window` events that holds `must_lo..=must_hi`,
/// with about two thirds of the spare room before (causes come first).
fn window_bounds(len: usize, must_lo: usize, must_hi: usize, window: usize) -> (usize, usize) {
    if window == 0 || len <= window {
        return (0, len);
    }
    let span = must_hi - must_lo + 1;
    if span >= window {
        return (must_lo, must_lo + window);
    }
    let spare = window - span;
    let before = (spare * 2).div_ceil(3);
    let mut lo = must_lo.saturating_sub(before);
    let mut hi = (lo + window).min(len);
    if hi - lo < window {
        lo = hi.saturating_sub(window);
    }
    if hi < must_hi + 1 {
        hi = must_hi + 1;
        lo = hi - window;
    }
    (lo, hi)
}

impl Layout {
    fn build(trace: &Trace, focus: Option<Focus>, window: usize) -> Layout {
        let ev = &trace.events;
        // The focused event: the one at that step, or the last one before it.
        let focus_at = focus.as_ref().and_then(|f| {
            ev.iter()
                .position(|e| e.step == f.step)
                .or_else(|| ev.iter().rposition(|e| e.step < f.step))
        });
        let arrow = match (&focus, focus_at) {
            (Some(f), Some(i)) => violating_arrow(trace, i, f),
            _ => None,
        };
        // The rule the arrow broke: the caller's, else the focused violation
        // event's, else a violation event of the same instance right after it.
        let arrow_rule = focus.as_ref().and_then(|f| f.rule).or_else(|| {
            let i = focus_at?;
            if let What::Violation { rule, .. } = &ev[i].what {
                return Some(*rule);
            }
            ev[i + 1..]
                .iter()
                .take(3)
                .filter(|o| o.host == ev[i].host && o.inst == ev[i].inst)
                .find_map(|o| match &o.what {
                    What::Violation { rule, .. } => Some(*rule),
                    _ => None,
                })
        });
        // A violation the trace has no event for gets a row of its own, right
        // after its arrow.
        let synthetic = match (&focus, focus_at) {
            (Some(f), Some(i)) => match (f.rule, &f.message) {
                (Some(rule), Some(msg)) => {
                    let lo = i.saturating_sub(ARROW_REACH);
                    let hi = (i + ARROW_REACH + 1).min(ev.len());
                    let recorded = ev[lo..hi]
                        .iter()
                        .any(|o| matches!(&o.what, What::Violation { rule: r, .. } if *r == rule));
                    (!recorded).then(|| (arrow.unwrap_or(i), format!("!! {rule} {msg}")))
                }
                _ => None,
            },
            _ => None,
        };

        let (lo, hi) = match focus_at {
            Some(i) => {
                let a = arrow.unwrap_or(i);
                window_bounds(ev.len(), a.min(i), a.max(i), window)
            }
            None => window_bounds(ev.len(), 0, 0, window),
        };

        // Lay out the shown events, collecting lanes as they come.
        let mut placed = Vec::new();
        let mut keys: Vec<(u8, LaneKind)> = Vec::new();
        let mut want = |k: (u8, LaneKind)| {
            if !keys.contains(&k) {
                keys.push(k);
            }
            // Every host that appears gets its platform lane.
            let p = (k.0, LaneKind::Platform);
            if !keys.contains(&p) {
                keys.push(p);
            }
        };
        for (i, e) in ev.iter().enumerate().take(hi).skip(lo) {
            let (place, style, label) = describe(trace, e);
            match &place {
                Place::Arrow(a, b) => {
                    want(*a);
                    want(*b);
                }
                Place::Note(a) => want(*a),
            }
            placed.push((i, place, style, label));
        }
        keys.sort();
        let lanes: Vec<Lane> = keys
            .iter()
            .map(|&(host, kind)| Lane {
                host,
                kind,
                name: match kind {
                    LaneKind::App => format!("{}:app", trace.instance_name(host, 0)),
                    LaneKind::Platform => format!("{}:platform", trace.instance_name(host, 0)),
                    LaneKind::Instance(n) => trace.instance_name(host, n),
                },
            })
            .collect();
        let lane = |k: (u8, LaneKind)| {
            lanes
                .iter()
                .position(|l| (l.host, l.kind) == k)
                .expect("every placed lane was collected")
        };

        let mut rows = Vec::new();
        if lo > 0 {
            rows.push(Row::Elided(lo));
        }
        for (i, place, style, label) in placed {
            let e = &ev[i];
            let shape = match place {
                Place::Arrow(a, b) => Shape::Arrow(lane(a), lane(b)),
                Place::Note(a) => Shape::Note(lane(a)),
            };
            rows.push(Row::Event(EventRow {
                step: Some(e.step),
                at: e.at.to_string(),
                shape,
                style,
                label,
                violating: (arrow == Some(i)).then_some(arrow_rule),
                focused: focus_at == Some(i),
            }));
            if let Some((after, text)) = &synthetic {
                if *after == i {
                    let own = if e.inst != 0 {
                        LaneKind::Instance(e.inst)
                    } else {
                        LaneKind::Platform
                    };
                    let l = lanes
                        .iter()
                        .position(|l| (l.host, l.kind) == (e.host, own))
                        .unwrap_or_else(|| lane((e.host, LaneKind::Platform)));
                    rows.push(Row::Event(EventRow {
                        step: None,
                        at: e.at.to_string(),
                        shape: Shape::Note(l),
                        style: Style::Violation,
                        label: text.clone(),
                        violating: None,
                        focused: false,
                    }));
                }
            }
        }
        if hi < ev.len() {
            rows.push(Row::Elided(ev.len() - hi));
        }
        Layout { lanes, rows }
    }
}

/// `… N events …`, the summary of a cut.
fn elided_label(n: usize) -> String {
    format!("… {n} event{} …", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::window_bounds;

    #[test]
    fn window_holds_the_focus_and_respects_the_limit() {
        assert_eq!(window_bounds(10, 3, 3, 0), (0, 10));
        assert_eq!(window_bounds(10, 3, 3, 20), (0, 10));
        for len in [5usize, 30, 100] {
            for w in 1..12usize {
                for at in 0..len {
                    let (lo, hi) = window_bounds(len, at, at, w);
                    assert!(lo <= at && at < hi, "len {len} w {w} at {at}: {lo}..{hi}");
                    assert_eq!(hi - lo, w.min(len));
                    assert!(hi <= len);
                }
            }
        }
        let (lo, hi) = window_bounds(100, 40, 43, 6);
        assert!(lo <= 40 && hi > 43 && hi - lo == 6);
    }
}
