//! The password policy: what a new password (an operator's, or a booth guard's) must not be.
//!
//! Character classes alone let `Password123!` and `Admin@123456` through, and those are the
//! first guesses of anyone who tries. So a password is refused when it is
//! - shorter than [`MIN_LEN`] characters or uses fewer than three character classes;
//! - a common password, or a common password with digits and symbols around it and letters
//!   swapped for look-alikes (`P@ssw0rd2026`), or made only of one or two common words
//!   (`Summer-Love-2026`); the list is bundled ([`common`], `common_passwords.txt`), never
//!   downloaded;
//! - built from the site: the user name, "gatehouse", the campus or organisation names of
//!   `server.site_words`, with little else (`Gatehouse2026!`, `Wang.guard-88`).
//!
//! This module only judges; it never sees a stored hash and never logs a password.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The fewest characters a password may have.
pub const MIN_LEN: usize = 10;

/// The bundled list: one lower-case entry a line, `#` comments.
const COMMON_TEXT: &str = include_str!("common_passwords.txt");

/// The words every site has: the product's own name.
const BUILT_IN_SITE_WORDS: &[&str] = &["gatehouse"];

/// The common passwords and the words weak passwords are built on (lower case).
pub fn common() -> &'static HashSet<&'static str> {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    COMMON.get_or_init(|| {
        COMMON_TEXT
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Why a password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// Too short or too few character classes.
    TooSimple,
    /// On the common list, or a common word dressed up with digits, symbols, look-alikes.
    Common,
    /// Built from the user name, the site's words or "gatehouse".
    SiteDerived,
}

impl Weakness {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Weakness::TooSimple => "weak_password",
            Weakness::Common => "common_password",
            Weakness::SiteDerived => "site_password",
        }
    }

    /// The message, zh-CN and English.
    pub fn message(self) -> (&'static str, &'static str) {
        match self {
            Weakness::TooSimple => (
                "密码至少 10 位，且包含大写字母、小写字母、数字、符号中的三类",
                "A password needs at least 10 characters from three of: upper case, lower case, digits, symbols",
            ),
            Weakness::Common => (
                "这个密码太常见（或只是常见密码加上数字、符号），容易被猜中，请换一个",
                "This password is too common (or a common password with digits or symbols added) and easily guessed; choose another",
            ),
            Weakness::SiteDerived => (
                "密码不能由用户名、学校或单位名称、“gatehouse”等本站相关的词加数字、符号构成",
                "A password must not be built from the user name, the campus or organisation name, \"gatehouse\" or other site words plus digits and symbols",
            ),
        }
    }
}

/// Undoes the usual look-alike swaps (`p@ssw0rd` → `password`); `one` is what `1` stands for.
fn unleet(text: &str, one: char) -> String {
    text.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '0' => 'o',
            '1' => one,
            '!' | '|' => 'i',
            '3' => 'e',
            '5' | '$' => 's',
            '7' | '+' => 't',
            '8' => 'b',
            '9' => 'g',
            other => other,
        })
        .collect()
}

/// The text without the digits and symbols around it.
fn core(text: &str) -> &str {
    text.trim_matches(|c: char| !c.is_alphabetic())
}

/// The words to refuse for this account: the built-in ones, the site's, the user name and the
/// user name's parts (`wang.guard` → `wang.guard`, `wang`, `guard`), lower case, 3+ letters.
fn site_words(username: &str, site: &[String]) -> Vec<String> {
    let mut words: Vec<String> = BUILT_IN_SITE_WORDS.iter().map(|w| w.to_string()).collect();
    let name = username.trim().to_lowercase();
    words.extend(
        name.split(|c: char| !c.is_alphanumeric())
            .map(str::to_string)
            .chain([name.clone()]),
    );
    for word in site {
        let word = word.trim().to_lowercase();
        words.extend(
            word.split(|c: char| c.is_whitespace() || c == '-' || c == '_')
                .map(str::to_string)
                .chain([word.clone()]),
        );
    }
    words.retain(|w| w.chars().count() >= 3);
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words.dedup();
    words
}

/// Judges a new password for the account `username` on a site whose own words are `site`
/// (`server.site_words`); `None` when it may be used.
pub fn weakness(password: &str, username: &str, site: &[String]) -> Option<Weakness> {
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if password.chars().count() < MIN_LEN || classes.iter().filter(|c| **c).count() < 3 {
        return Some(Weakness::TooSimple);
    }
    let lower = password.to_lowercase();
    let site = site_words(username, site);
    let common = common();
    let lower_core = core(&lower);
    let variants = [
        lower.clone(),
        lower_core.to_string(),
        unleet(lower_core, 'i'),
        unleet(lower_core, 'l'),
    ];
    // Built from the site: take the site's words out (as typed and with look-alikes undone);
    // what is left must still have four letters of its own.
    for variant in &variants {
        let mut rest = variant.clone();
        let mut found = false;
        for word in &site {
            if rest.contains(word.as_str()) {
                rest = rest.replace(word.as_str(), " ");
                found = true;
            }
        }
        if found && rest.chars().filter(|c| c.is_alphabetic()).count() < 4 {
            return Some(Weakness::SiteDerived);
        }
    }
    if variants.iter().any(|v| common.contains(v.as_str())) {
        return Some(Weakness::Common);
    }
    // One or two words, each common or the site's, with digits and symbols between: as weak as
    // one word. (Three or more make a passphrase.)
    let runs: Vec<&str> = lower
        .split(|c: char| !c.is_alphabetic())
        .filter(|r| !r.is_empty())
        .collect();
    if !runs.is_empty()
        && runs.len() <= 2
        && runs
            .iter()
            .all(|r| common.contains(r) || site.iter().any(|w| w == r))
    {
        return Some(if runs.iter().any(|r| site.iter().any(|w| w == r)) {
            Weakness::SiteDerived
        } else {
            Weakness::Common
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(password: &str) -> Option<Weakness> {
        weakness(
            password,
            "wang.guard",
            &["Peking University".into(), "pku".into()],
        )
    }

    #[test]
    fn the_bundled_list_is_a_few_thousand_lower_case_entries() {
        let common = common();
        assert!(common.len() > 2000, "{}", common.len());
        assert!(common.iter().all(|w| w.to_lowercase() == *w));
        for known in [
            "password",
            "123456789",
            "1qaz2wsx",
            "woaini1314",
            "qwertyuiop",
        ] {
            assert!(common.contains(known), "{known}");
        }
    }

    #[test]
    fn common_passwords_dressed_up_with_classes_are_refused() {
        for p in [
            "Password123!",
            "P@ssw0rd2026",
            "Admin@123456",
            "Woaini@1314",
            "1qaz@WSX3edc",
            "Qwerty@2024!",
            "Abc123456!",
            "Summer-Love-2026",
            "Zhangwei@1990",
        ] {
            assert_eq!(judge(p), Some(Weakness::Common), "{p}");
        }
    }

    #[test]
    fn site_derived_passwords_are_refused() {
        for p in [
            "Gatehouse2026!",
            "G@tehouse-2026",
            "Wang.guard-88",
            "Guard#Wang2026",
            "PekingUniversity1!",
            "Pku@2026-Gate",
            "Gatehouse-Test-2026",
        ] {
            assert_eq!(judge(p), Some(Weakness::SiteDerived), "{p}");
        }
    }

    #[test]
    fn short_or_single_class_passwords_are_refused_as_before() {
        assert_eq!(judge("Ab1!"), Some(Weakness::TooSimple));
        assert_eq!(judge("alllowercaseletters"), Some(Weakness::TooSimple));
    }

    #[test]
    fn passwords_of_ones_own_pass() {
        for p in [
            "Booth-North-88",
            "Lantern-Orchid-7319",
            "tR7#kq2Lm9vX",
            "Summer-Winter-Spring-9",
            "雪松-Gate-4471",
        ] {
            assert_eq!(judge(p), None, "{p}");
        }
    }
}
