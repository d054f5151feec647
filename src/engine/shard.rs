//! Which cases of a plan a run executes: `--filter` (ids containing any of the texts) and
//! `--partition k/n` (CI sharding).
//!
//! The partition is a deterministic round-robin over the filtered plan order: case `i` goes
//! to shard `i mod n + 1`, so shards differ in size by at most one case, every case is in
//! exactly one shard, and the same plan, filter and `n` always give the same shards. Skipped
//! cases are split the same way, so merged shards report each once.

use super::plan::Plan;
use super::spec::Case;
use std::fmt;
use std::str::FromStr;

/// `--partition k/n`: the k-th of n shards (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub k: usize,
    pub n: usize,
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Partition, String> {
        let bad = || format!("partition {s:?}: expected k/n with 1 <= k <= n, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Partition {
    /// Whether the `i`-th item (0-based, in plan order) belongs to this shard.
    pub fn holds(&self, i: usize) -> bool {
        i % self.n == self.k - 1
    }
}

/// What a run executes, with each case's and skipped case's index in the filtered plan
/// (the same in every shard: reports order merged shards by it).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub cases: Vec<Case>,
    pub case_index: Vec<usize>,
    /// (index, id, reason).
    pub skipped: Vec<(usize, String, String)>,
}

/// Applies `--filter` (ids containing any of `filters`; all when empty) and `--partition` to
/// the plan's cases and skipped cases.
pub fn select(plan: &Plan, filters: &[String], partition: Option<Partition>) -> Selection {
    let keep = |id: &str| filters.is_empty() || filters.iter().any(|f| id.contains(f.as_str()));
    let in_shard = |i: usize| partition.is_none_or(|p| p.holds(i));
    let mut sel = Selection::default();
    for (i, c) in plan.cases.iter().filter(|c| keep(&c.id)).enumerate() {
        if in_shard(i) {
            sel.cases.push(c.clone());
            sel.case_index.push(i);
        }
    }
    for (i, (id, why)) in plan.skipped.iter().filter(|(id, _)| keep(id)).enumerate() {
        if in_shard(i) {
            sel.skipped.push((i, id.clone(), why.clone()));
        }
    }
    sel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_and_reject_nonsense() {
        assert_eq!("2/4".parse::<Partition>(), Ok(Partition { k: 2, n: 4 }));
        for bad in ["0/4", "5/4", "1/0", "a/b", "3", "1/2/3", ""] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        assert_eq!(Partition { k: 1, n: 3 }.to_string(), "1/3");
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_indices() {
        for n in 1..6 {
            for i in 0..50 {
                let owners = (1..=n).filter(|&k| Partition { k, n }.holds(i)).count();
                assert_eq!(owners, 1, "item {i} of {n} shards");
            }
        }
    }
}
