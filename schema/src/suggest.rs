//! "Did you mean …?": the closest known word to a misspelt one.

/// The candidate closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(word);
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
    }

    #[test]
    fn unrelated_words_find_nothing() {
        assert_eq!(closest("colour", ["name", "mount"]), None);
        assert_eq!(closest("x", ["when", "for"]), None);
    }
}
