//! Text for people: counts with their noun in the right number, and the one escaper of text
//! placed in HTML, SVG and XML (the reports, the RFC 5366 resource list of ad-hoc groups).

/// `1 case`, `2 cases`, `0 cases`: `n` and `noun`, with an `s` unless `n` is 1. Nouns whose
/// plural is not `+s` use [`plural_of`].
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `n` and the singular or the given plural (`1 summary`, `2 summaries`).
pub fn plural_of(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Escapes text for element content and attribute values of HTML, SVG and XML: `&`, `<`,
/// `>`, `"` and `'` become references (`&#39;`, which HTML 4 and XML both know), and control
/// characters other than tab and newline, which XML 1.0 forbids and a page has no use for,
/// become U+FFFD.
pub fn escape_markup(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "case"), "1 case");
        assert_eq!(plural(0, "case"), "0 cases");
        assert_eq!(plural(234, "case"), "234 cases");
        assert_eq!(plural_of(1, "summary", "summaries"), "1 summary");
        assert_eq!(plural_of(3, "summary", "summaries"), "3 summaries");
    }

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape_markup("<script>a('x')</script> & \"q\""),
            "&lt;script&gt;a(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape_markup("a\u{1}b\tc\nd"), "a\u{fffd}b\tc\nd");
    }
}
