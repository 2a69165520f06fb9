//! "Did you mean …?": the closest known word to a misspelt one.

/// The candidate closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(word);
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // A unique candidate that the word begins ("evict" for "evict-oldest").
    let mut prefixed = candidates
        .iter()
        .filter(|c| folded.len() >= 3 && fold(c).starts_with(&folded));
    if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
        return Some(only);
    }
    candidates
        .into_iter()
        .filter_map(|c| {
            let distance = strsim::damerau_levenshtein(&folded, &fold(c));
            let allowed = (c.chars().count().max(word.chars().count()) / 3).max(1);
            (distance <= allowed).then_some((distance, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// Case and the `-`/`_` spelling do not count as differences.
fn fold(word: &str) -> String {
    word.to_lowercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn typos_find_their_key() {
        let keys = ["name", "address", "mount", "min_replicas", "seeders"];
        assert_eq!(closest("mout", keys), Some("mount"));
        assert_eq!(closest("adress", keys), Some("address"));
        assert_eq!(closest("min-replicas", keys), Some("min_replicas"));
        assert_eq!(closest("Seeders", keys), Some("seeders"));
        assert_eq!(
            closest("evict", ["stop", "evict-oldest"]),
            Some("evict-oldest")
        );
    }

    #[test]
    fn unrelated_words_find_nothing() {
        assert_eq!(closest("colour", ["name", "mount"]), None);
        assert_eq!(closest("x", ["when", "for"]), None);
    }
}
