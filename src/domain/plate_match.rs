//! Plate search for the guard: partial input, and near matches under the usual recognition and
//! typing confusions (O/0, I/1, B/8, S/5, Z/2, D/0, G/6).
//!
//! Suggestions only: nothing ever opens on a fuzzy match. The functions here return plates for
//! the guard to look at; registering a visit or opening a lane always takes the exact plate the
//! guard confirms, validated by [`super::Plate`]. Like the rest of the domain: no IO, no
//! storage; the caller hands in the plates it knows.

/// The canonical form of a character under the confusions: letters that look like digits
/// become the digit.
fn canonical(c: char) -> char {
    match c {
        'O' | 'D' | 'Q' => '0',
        'I' | 'L' => '1',
        'B' => '8',
        'S' => '5',
        'Z' => '2',
        'G' => '6',
        other => other,
    }
}

/// Normalises typed text for searching: full-width to half-width, upper case, separators
/// dropped — exactly as [`super::plate::normalise_fragment`] does for every plate input.
pub fn normalise_query(text: &str) -> String {
    super::plate::normalise_fragment(text)
}

fn canonical_str(text: &str) -> String {
    text.chars().map(canonical).collect()
}

/// Plates of `known` that contain `query` exactly (first) or under the confusions (after),
/// at most `limit`, each once. A query of fewer than two characters suggests nothing.
pub fn suggest<'a>(
    query: &str,
    known: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> Vec<String> {
    let q = normalise_query(query);
    if q.chars().count() < 2 {
        return Vec::new();
    }
    let cq = canonical_str(&q);
    let mut exact = Vec::new();
    let mut near = Vec::new();
    for plate in known {
        if plate.contains(&q) {
            exact.push(plate.to_string());
        } else if canonical_str(plate).contains(&cq) {
            near.push(plate.to_string());
        }
    }
    exact.sort();
    near.sort();
    exact.dedup();
    near.dedup();
    exact.into_iter().chain(near).take(limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 4] = ["京A12345", "京A8S0Z6", "沪B00001", "京AD1234"];

    #[test]
    fn partial_input_finds_the_plates_that_contain_it() {
        assert_eq!(suggest("a123", KNOWN, 10), vec!["京A12345"]);
        assert_eq!(suggest("京A01234", KNOWN, 10), vec!["京AD1234"]);
    }

    #[test]
    fn recognition_confusions_are_suggested_after_exact_matches() {
        // B/8, S/5, O/0, Z/2, G/6 all the other way round.
        assert_eq!(suggest("BS026", KNOWN, 10), vec!["京A8S0Z6"]);
        // O/0, typed full-width.
        assert_eq!(suggest("ｏ0001", KNOWN, 10), vec!["沪B00001"]);
    }

    #[test]
    fn a_query_typed_any_way_finds_the_same_plates() {
        for q in ["a12", "Ａ１２", "A·12", "a-1 2", "ａ_１.２"] {
            assert_eq!(suggest(q, KNOWN, 10), vec!["京A12345"], "{q:?}");
        }
    }

    #[test]
    fn one_character_suggests_nothing() {
        assert!(suggest("1", KNOWN, 10).is_empty());
    }
}
