//! Small shared helpers.

/// `", did you mean \"x\"?"` when a known name is close to `got` (edit distance ≤ 2), else "".
pub fn did_you_mean(got: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(got, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(", did you mean {k:?}?"))
        .unwrap_or_default()
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(edit_distance("pfa", "pf-a"), 1);
        assert_eq!(
            did_you_mean("pfa", &["pf-a", "x"]),
            ", did you mean \"pf-a\"?"
        );
        assert_eq!(did_you_mean("zzzz", &["pf-a", "x"]), "");
    }
}
