//! Two captures compared message by message (`cpm-harness diff`), after the ladder's
//! normalization and canonical order ([`Ladder`]).
//!
//! This module owns the comparison: rows are matched by their identity (sender → receiver,
//! what the message is, the dialog's Request-URI: `x → pf-b1 INVITE [sip:b1@example.com]`),
//! so a row present in one capture only is **missing** or **added**; matched rows out of
//! relative order (not on a longest common subsequence of the two orders) are **reordered**;
//! matched rows whose normalized SIP headers, SDP lines (`c=`, `m=` with ports read through
//! the entity mapping, every `a=`) or MSRP headers and chunk counts differ are **changed**,
//! naming each header or attribute.
//!
//! Normalized identifiers (`call-2`, `tag-5`, `sess-3`, …) are numbered in each capture's own
//! order, so they are compared through a one-to-one correspondence built while walking the
//! matched rows: `call-2` in A may be `call-3` in B, but one Call-ID in A must stay one
//! Call-ID in B (a B2BUA reusing its upstream Call-ID shows as a changed `Call-ID`).

use crate::capture::analyze::AnalyzeError;
use crate::capture::ladder::{Ladder, Row};
use crate::topology::Topology;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A row found in one capture only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Only {
    /// 1-based row number in its capture.
    pub row: usize,
    pub key: String,
    pub detail: String,
}

/// A matched row out of relative order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub key: String,
    pub a_row: usize,
    pub b_row: usize,
    /// The row just before it in each capture.
    pub a_after: Option<String>,
    pub b_after: Option<String>,
}

/// One header or SDP line that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub name: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// A matched row whose fields differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub key: String,
    pub a_row: usize,
    pub b_row: usize,
    pub fields: Vec<FieldChange>,
}

/// The differences between two captures.
#[derive(Debug, Clone)]
pub struct Diff {
    pub a: PathBuf,
    pub b: PathBuf,
    pub a_rows: usize,
    pub b_rows: usize,
    /// In A, not in B.
    pub missing: Vec<Only>,
    /// In B, not in A.
    pub added: Vec<Only>,
    pub reordered: Vec<Moved>,
    pub changed: Vec<Changed>,
}

impl Diff {
    pub fn is_equal(&self) -> bool {
        self.missing.is_empty()
            && self.added.is_empty()
            && self.reordered.is_empty()
            && self.changed.is_empty()
    }

    /// A readable diff: `-` missing in B, `+` added in B, `~` reordered, `!` changed.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let rows = |n: usize| crate::text::plural(n, "row");
        let _ = writeln!(s, "A: {} ({})", self.a.display(), rows(self.a_rows));
        let _ = writeln!(s, "B: {} ({})", self.b.display(), rows(self.b_rows));
        if self.is_equal() {
            let _ = writeln!(
                s,
                "no differences: every row matches, in the same order, with the same \
                 normalized headers and SDP"
            );
            return s;
        }
        for o in &self.missing {
            let _ = writeln!(s, "- missing in B  (A row {}) {}", o.row, o.key);
            let _ = writeln!(s, "      {}", o.detail);
        }
        for o in &self.added {
            let _ = writeln!(s, "+ added in B    (B row {}) {}", o.row, o.key);
            let _ = writeln!(s, "      {}", o.detail);
        }
        for m in &self.reordered {
            let _ = writeln!(s, "~ reordered     {}", m.key);
            let _ = writeln!(
                s,
                "      A row {} after {}",
                m.a_row,
                m.a_after.as_deref().unwrap_or("(first)")
            );
            let _ = writeln!(
                s,
                "      B row {} after {}",
                m.b_row,
                m.b_after.as_deref().unwrap_or("(first)")
            );
        }
        for c in &self.changed {
            let _ = writeln!(
                s,
                "! changed       (A row {}, B row {}) {}",
                c.a_row, c.b_row, c.key
            );
            for f in &c.fields {
                let show = |v: &Option<String>| match v {
                    Some(v) => format!("`{v}`"),
                    None => "(absent)".to_string(),
                };
                let _ = writeln!(s, "      {}: {} → {}", f.name, show(&f.a), show(&f.b));
            }
        }
        let _ = writeln!(
            s,
            "{} missing in B, {} added in B, {} reordered, {} changed",
            self.missing.len(),
            self.added.len(),
            self.reordered.len(),
            self.changed.len()
        );
        s
    }
}

/// Reads, draws and compares two captures; `map` applies to both (else each is inferred).
pub fn diff_files(
    a: &Path,
    b: &Path,
    map: Option<&(PathBuf, Topology)>,
) -> Result<Diff, AnalyzeError> {
    let la = Ladder::from_file(a, map)?;
    let lb = Ladder::from_file(b, map)?;
    let mut d = diff_ladders(&la, &lb);
    d.a = a.to_owned();
    d.b = b.to_owned();
    Ok(d)
}

/// Compares two ladders (see the module docs).
pub fn diff_ladders(a: &Ladder, b: &Ladder) -> Diff {
    let b_index: HashMap<&str, usize> = b
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key.as_str(), i))
        .collect();
    let a_index: HashMap<&str, usize> = a
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key.as_str(), i))
        .collect();
    let mut d = Diff {
        a: PathBuf::new(),
        b: PathBuf::new(),
        a_rows: a.rows.len(),
        b_rows: b.rows.len(),
        missing: Vec::new(),
        added: Vec::new(),
        reordered: Vec::new(),
        changed: Vec::new(),
    };
    // Matched pairs in A order.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, r) in a.rows.iter().enumerate() {
        match b_index.get(r.key.as_str()) {
            Some(&j) => pairs.push((i, j)),
            None => d.missing.push(only(i, r)),
        }
    }
    for (j, r) in b.rows.iter().enumerate() {
        if !a_index.contains_key(r.key.as_str()) {
            d.added.push(only(j, r));
        }
    }
    // Reordered: matched rows off a longest increasing subsequence of B positions.
    let keep = lis(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    for (k, &(i, j)) in pairs.iter().enumerate() {
        if !keep[k] {
            d.reordered.push(Moved {
                key: a.rows[i].key.clone(),
                a_row: i + 1,
                b_row: j + 1,
                a_after: i.checked_sub(1).map(|p| a.rows[p].key.clone()),
                b_after: j.checked_sub(1).map(|p| b.rows[p].key.clone()),
            });
        }
    }
    // Changed fields, identifiers compared through a one-to-one correspondence.
    let mut ids = Bijection::default();
    for &(i, j) in &pairs {
        let fields = compare_fields(&a.rows[i], &b.rows[j], &mut ids);
        if !fields.is_empty() {
            d.changed.push(Changed {
                key: a.rows[i].key.clone(),
                a_row: i + 1,
                b_row: j + 1,
                fields,
            });
        }
    }
    d
}

fn only(i: usize, r: &Row) -> Only {
    Only {
        row: i + 1,
        key: r.key.clone(),
        detail: r.detail.clone(),
    }
}

/// Marks the elements of a longest strictly increasing subsequence.
fn lis(v: &[usize]) -> Vec<bool> {
    let n = v.len();
    let mut tails: Vec<usize> = Vec::new(); // indices into v
    let mut prev: Vec<Option<usize>> = vec![None; n];
    for i in 0..n {
        let k = tails.partition_point(|&t| v[t] < v[i]);
        prev[i] = k.checked_sub(1).map(|p| tails[p]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = vec![false; n];
    let mut cur = tails.last().copied();
    while let Some(i) = cur {
        keep[i] = true;
        cur = prev[i];
    }
    keep
}

/// The normalized identifier classes.
const ID_CLASSES: [&str; 7] = ["call", "tag", "branch", "sess", "tid", "msg", "eph"];

fn is_id(tok: &str) -> Option<&str> {
    let (class, n) = tok.rsplit_once('-')?;
    (ID_CLASSES.contains(&class) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then_some(class)
}

/// A one-to-one correspondence of normalized identifiers between A and B.
#[derive(Default)]
struct Bijection {
    a2b: HashMap<String, String>,
    b2a: HashMap<String, String>,
}

impl Bijection {
    /// True when `x` (in A) may stand for `y` (in B); records the pair.
    fn pair(&mut self, x: &str, y: &str) -> bool {
        match (self.a2b.get(x), self.b2a.get(y)) {
            (Some(bx), _) if bx != y => false,
            (_, Some(ay)) if ay != x => false,
            _ => {
                self.a2b.insert(x.to_string(), y.to_string());
                self.b2a.insert(y.to_string(), x.to_string());
                true
            }
        }
    }
}

fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let word = c.is_ascii_alphanumeric() || c == '-';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                out.push(&s[st..i]);
                out.push(&s[i..i + c.len_utf8()]);
                start = None;
            }
            (false, None) => out.push(&s[i..i + c.len_utf8()]),
            (true, Some(_)) => {}
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

/// Whether two normalized values are the same, identifiers read through `ids`. Pairs are
/// recorded only when the whole value matches.
fn same_value(a: &str, b: &str, ids: &mut Bijection) -> bool {
    if a == b && !tokens(a).iter().any(|t| is_id(t).is_some()) {
        return true;
    }
    let (ta, tb) = (tokens(a), tokens(b));
    if ta.len() != tb.len() {
        return false;
    }
    let mut pairs = Vec::new();
    for (x, y) in ta.iter().zip(&tb) {
        match (is_id(x), is_id(y)) {
            (Some(cx), Some(cy)) if cx == cy => pairs.push((*x, *y)),
            (None, None) if x == y => {}
            _ => return false,
        }
    }
    let mut trial = Bijection {
        a2b: ids.a2b.clone(),
        b2a: ids.b2a.clone(),
    };
    if pairs.iter().all(|(x, y)| trial.pair(x, y)) {
        *ids = trial;
        true
    } else {
        false
    }
}

fn compare_fields(a: &Row, b: &Row, ids: &mut Bijection) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let bmap: HashMap<&str, &str> = b
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let amap: HashMap<&str, &str> = a
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, va) in &a.fields {
        match bmap.get(k.as_str()) {
            Some(vb) if same_value(va, vb, ids) => {}
            Some(vb) => out.push(FieldChange {
                name: k.clone(),
                a: Some(va.clone()),
                b: Some(vb.to_string()),
            }),
            None => out.push(FieldChange {
                name: k.clone(),
                a: Some(va.clone()),
                b: None,
            }),
        }
    }
    for (k, vb) in &b.fields {
        if !amap.contains_key(k.as_str()) {
            out.push(FieldChange {
                name: k.clone(),
                a: None,
                b: Some(vb.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lis_keeps_the_longest_run_in_order() {
        assert_eq!(lis(&[0, 1, 2, 3]), vec![true; 4]);
        assert_eq!(lis(&[0, 3, 1, 2]), vec![true, false, true, true]);
    }

    #[test]
    fn identifiers_compare_one_to_one() {
        let mut ids = Bijection::default();
        assert!(same_value("call-1@client-a", "call-2@client-a", &mut ids));
        assert!(same_value("call-1@client-a", "call-2@client-a", &mut ids));
        // call-1 is call-2 in B: a second A Call-ID cannot be call-2 too.
        assert!(!same_value("call-3@pf-a", "call-2@client-a", &mut ids));
        assert!(!same_value("70", "69", &mut ids));
        assert!(same_value(
            "msrp://x:msrp/sess-4;tcp",
            "msrp://x:msrp/sess-9;tcp",
            &mut ids
        ));
    }
}
