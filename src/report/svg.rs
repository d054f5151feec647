//! Ladder diagrams as inline SVG: the observed ladder of a case (rows in the order they were
//! captured, the time on the left; entities as columns, SIP as solid arrows, MSRP link openings as thick dashed arrows in their opening direction, MSRP
//! requests and responses as thin dashed arrows, closings dotted; rows a failing check cites
//! in red; each arrow shows its message on hover through an SVG `<title>`), and the figure's
//! expected ladder with what became of each step.
//!
//! Every string is escaped with [`esc`] ([`crate::text::escape_markup`]): labels, headers
//! and SDP lines come from the SUT.

use super::model::{ExpectedView, LadderView, RowStyle, StepStatus};
pub use crate::text::escape_markup as esc;
use std::fmt::Write as _;

const COLW: f64 = 88.0;
const LEFT: f64 = 56.0;
const HEAD: f64 = 52.0;
const ROWH: f64 = 24.0;

fn x_of(col: usize) -> f64 {
    LEFT + COLW * col as f64 + COLW / 2.0
}

/// Arrowhead markers, their ids prefixed (two SVGs share one page's id space).
fn defs(p: &str) -> String {
    let mut s = String::from("<defs>");
    for (name, color) in [("ah", "#222"), ("ah-red", "#c62828"), ("ah-grey", "#999")] {
        let _ = write!(
            s,
            "<marker id=\"{p}-{name}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{color}\"/></marker>"
        );
    }
    s.push_str("</defs>");
    s
}

fn header(s: &mut String, names: &[(String, String, bool)], height: f64) {
    for (i, (name, sub, sut)) in names.iter().enumerate() {
        let x = x_of(i);
        let class = if *sut { "col sut" } else { "col" };
        let _ = write!(
            s,
            "<g class=\"{class}\"><rect x=\"{:.1}\" y=\"4\" width=\"{:.1}\" height=\"38\" rx=\"4\"/><text x=\"{x:.1}\" y=\"20\" class=\"name\">{}</text><text x=\"{x:.1}\" y=\"35\" class=\"sub\">{}</text></g><line class=\"life\" x1=\"{x:.1}\" y1=\"{HEAD:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
            x - COLW / 2.0 + 6.0,
            COLW - 12.0,
            esc(name),
            esc(sub),
            height - 6.0
        );
    }
}

/// Draws one arrow with its label; `classes` picks the stroke (see the page's CSS).
#[allow(clippy::too_many_arguments)]
fn arrow(
    s: &mut String,
    p: &str,
    from: usize,
    to: usize,
    y: f64,
    classes: &str,
    marker: &str,
    both_ends: bool,
    label: &str,
) {
    let (x1, x2) = (x_of(from), x_of(to));
    if from == to {
        // A message an entity sent itself (never in a healthy chain): a small loop.
        let _ = write!(
            s,
            "<path class=\"{classes}\" d=\"M{x1:.1},{:.1} h18 v10 h-18\" marker-end=\"url(#{p}-{marker})\"/>",
            y - 6.0
        );
    } else {
        let dir = if x2 > x1 { 1.0 } else { -1.0 };
        let start = if both_ends {
            format!(" marker-start=\"url(#{p}-{marker})\"")
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<line class=\"{classes}\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" marker-end=\"url(#{p}-{marker})\"{start}/>",
            x1 + dir * 2.0,
            x2 - dir * 2.0
        );
    }
    let mid = (x1 + x2) / 2.0 + if from == to { 30.0 } else { 0.0 };
    let _ = write!(
        s,
        "<text class=\"label\" x=\"{mid:.1}\" y=\"{:.1}\">{}</text>",
        y - 4.0,
        esc(label)
    );
}

/// The order the observed ladder's rows are drawn in: by the time each row's first message was
/// captured, so that time runs down the page (rows at the same time keep the model's causal
/// order). Every effect was captured after its cause, so this order is causal too; the text
/// ladder (`cpm-harness show`) keeps the canonical causal order, with no times.
pub fn time_order(l: &LadderView) -> Vec<usize> {
    let mut order: Vec<usize> = (0..l.rows.len()).collect();
    order.sort_by(|&a, &b| l.rows[a].t_ms.total_cmp(&l.rows[b].t_ms));
    order
}

/// The observed ladder, its rows in [`time_order`] (`data-row` keeps each row's index in the
/// model).
pub fn observed(l: &LadderView) -> String {
    let p = "obs";
    let width = LEFT + COLW * l.columns.len() as f64 + 8.0;
    let height = HEAD + ROWH * (l.rows.len() as f64 + 1.0);
    let mut s = format!(
        "<svg class=\"ladder observed\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"observed ladder\">"
    );
    s.push_str(&defs(p));
    let names: Vec<(String, String, bool)> = l
        .columns
        .iter()
        .map(|c| {
            let sub = match (&c.role, c.sut) {
                (Some(r), true) => format!("{r} · SUT"),
                (Some(r), false) => r.clone(),
                (None, _) => "unknown".to_string(),
            };
            (c.name.clone(), sub, c.sut)
        })
        .collect();
    header(&mut s, &names, height);
    for (drawn, i) in time_order(l).into_iter().enumerate() {
        let r = &l.rows[i];
        let y = HEAD + ROWH * (drawn as f64 + 1.0);
        let failed = !r.failed.is_empty();
        let kind = match r.style {
            RowStyle::Sip => "sip",
            RowStyle::LinkOpen => "open",
            RowStyle::LinkClose => "close",
            RowStyle::Msrp => "msrp",
        };
        let mut title = r.message.join("\n");
        if let Some(step) = &r.step {
            let _ = write!(title, "\nfigure message: {step}");
        }
        if failed {
            let ids: Vec<&str> = r.failed.iter().map(|c| c.as_str()).collect();
            let _ = write!(title, "\nFAILED: {}", ids.join(", "));
        }
        let _ = write!(
            s,
            "<g class=\"row {kind}{}\" data-row=\"{i}\"><title>{}</title><rect class=\"hit\" x=\"0\" y=\"{:.1}\" width=\"{width:.0}\" height=\"{ROWH:.1}\"/><text class=\"t\" x=\"4\" y=\"{:.1}\">{:.1}</text>",
            if failed { " failed" } else { "" },
            esc(&title),
            y - ROWH + 6.0,
            y + 4.0,
            r.t_ms
        );
        let marker = if failed {
            "ah-red"
        } else if r.style == RowStyle::LinkClose {
            "ah-grey"
        } else {
            "ah"
        };
        let label = if failed {
            format!("✗ {}", r.label)
        } else {
            r.label.clone()
        };
        arrow(
            &mut s,
            p,
            r.from,
            r.to,
            y,
            "arrow",
            marker,
            r.style == RowStyle::LinkClose,
            &label,
        );
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// The figure's expected ladder; `case_failed` draws missing steps red (else grey).
pub fn expected(e: &ExpectedView, sut: &[String], case_failed: bool) -> String {
    let p = "exp";
    let width = LEFT + COLW * e.columns.len() as f64 + 8.0;
    let height = HEAD + ROWH * (e.steps.len() as f64 + 1.0);
    let mut s = format!(
        "<svg class=\"ladder expected\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"expected ladder\">"
    );
    s.push_str(&defs(p));
    let names: Vec<(String, String, bool)> = e
        .columns
        .iter()
        .map(|c| {
            let is_sut = sut.contains(c);
            (
                c.clone(),
                if is_sut {
                    "SUT".into()
                } else {
                    "harness".into()
                },
                is_sut,
            )
        })
        .collect();
    header(&mut s, &names, height);
    for (i, st) in e.steps.iter().enumerate() {
        let y = HEAD + ROWH * (i as f64 + 1.0);
        let kind = if st.message.ends_with("-open") {
            "open"
        } else if st.message == "SEND" {
            "msrp"
        } else {
            "sip"
        };
        let (status, marker, what) = match st.status {
            StepStatus::Seen => ("seen", "ah", "observed".to_string()),
            StepStatus::Failed => (
                "failed",
                "ah-red",
                format!(
                    "observed; FAILED: {}",
                    st.failed
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            StepStatus::Missing if case_failed => {
                ("missing failed", "ah-red", "never observed".to_string())
            }
            StepStatus::Missing => ("missing", "ah-grey", "never observed".to_string()),
            StepStatus::Hidden => (
                "hidden",
                "ah-grey",
                "between two SUT roles: not visible to the harness".to_string(),
            ),
        };
        let title = format!(
            "{} ({}): {} {} → {}\n{what}",
            st.id, st.reference, st.message, e.columns[st.from], e.columns[st.to]
        );
        let _ = write!(
            s,
            "<g class=\"row {kind} {status}\" data-step=\"{}\"><title>{}</title><rect class=\"hit\" x=\"0\" y=\"{:.1}\" width=\"{width:.0}\" height=\"{ROWH:.1}\"/><text class=\"t\" x=\"4\" y=\"{:.1}\">{}</text>",
            esc(&st.id),
            esc(&title),
            y - ROWH + 6.0,
            y + 4.0,
            esc(&st.reference)
        );
        let label = match st.status {
            StepStatus::Failed => format!("✗ {}", st.message),
            StepStatus::Missing if case_failed => format!("✗ {} (missing)", st.message),
            _ => st.message.clone(),
        };
        arrow(&mut s, p, st.from, st.to, y, "arrow", marker, false, &label);
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}
