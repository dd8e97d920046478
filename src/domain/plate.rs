//! Chinese licence plates: normalisation, validation, classes (docs/protocols.md#licence-plates).
//!
//! What it is for: every plate typed by a guard, read by a camera or stored in a list goes through
//! [`Plate::parse`], so that `京A·12345`, `京a 12345` and `京Ａ１２３４５` are one plate and a
//! mistyped plate is refused with a precise, renderable reason ([`PlateError`]).
//!
//! What it never does: fuzzy matching (a plate either parses to exactly one normalised text or is
//! refused — suggestions for the guard belong elsewhere), allocation (a [`Plate`] is an inline
//! 16-byte value), or guessing the colour (identity is plate **and** [`PlateColour`]).
//!
//! Military plates are accepted as [`PlateKind::Special`] without checking their inner structure:
//! the format is not public enough to validate and refusing a real army vehicle at the gate is
//! worse than storing its text as typed. Armed-police (WJ) plates are also `Special`, but their
//! structure is public and checked like the others' (`armed_police`): a WJ prefix is no way to
//! store arbitrary text as a plate.

use std::fmt;

/// The 31 province-level abbreviations that start an ordinary plate.
pub const PROVINCES: [char; 31] = [
    '京', '津', '冀', '晋', '蒙', '辽', '吉', '黑', '沪', '苏', '浙', '皖', '闽', '赣', '鲁', '豫',
    '鄂', '湘', '粤', '桂', '琼', '渝', '川', '贵', '云', '藏', '陕', '甘', '青', '宁', '新',
];

/// Suffix characters that replace the last serial character of a 7-character plate.
const SUFFIXES: [char; 6] = ['警', '学', '挂', '港', '澳', '领'];

/// Longest normalised plate, in UTF-8 bytes (a suffix plate is 11, an embassy plate 9).
const MAX_BYTES: usize = 15;
/// Longest plate text in characters that is even looked at.
const MAX_CHARS: usize = 10;

/// A validated, normalised plate text: half-width, upper case, no separators.
///
/// Stored inline (no heap): `Copy`, 16 bytes, cheap to hash — the gate indexes a million of them.
/// The only way to build one is [`Plate::parse`], so every `Plate` is valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plate {
    len: u8,
    bytes: [u8; MAX_BYTES],
}

/// What kind of plate a [`Plate`] is, as far as its text tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlateKind {
    /// Province + letter + 5 serial characters (7 characters).
    Ordinary,
    /// New-energy small vehicle: province + letter + D/F/A/B/C/E/G/H/J/K + letter-or-digit + 4 digits.
    NewEnergySmall,
    /// New-energy large vehicle: province + letter + 5 digits + D/F.
    NewEnergyLarge,
    /// Province + letter + 4 serial characters + a suffix character.
    Suffix(PlateSuffix),
    /// Embassy: 使 + 6 digits.
    Embassy,
    /// Military (2 letters + 5 characters, not validated) or armed police (WJ…, validated).
    Special,
}

/// The suffix of a [`PlateKind::Suffix`] plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlateSuffix {
    /// 警: police.
    Police,
    /// 学: driving school.
    DrivingSchool,
    /// 挂: trailer.
    Trailer,
    /// 港: Hong Kong cross-border (粤Z only).
    HongKong,
    /// 澳: Macau cross-border (粤Z only).
    Macau,
    /// 领: consulate.
    Consulate,
}

/// The colour of the plate, part of the vehicle's identity: 京A12345 blue and 京A12345 yellow are
/// different vehicles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlateColour {
    /// 蓝牌: ordinary small vehicles.
    Blue,
    /// 黄牌: large vehicles, driving school, motorcycles.
    Yellow,
    /// 绿牌 (gradient green): new-energy small vehicles.
    Green,
    /// 黄绿牌: new-energy large vehicles.
    YellowGreen,
    /// 白牌: police, military, armed police.
    White,
    /// 黑牌: embassy, consulate, foreign, Hong Kong / Macau cross-border.
    Black,
}

/// A plate together with its colour: how vehicles, lock entries and bookings are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlateIdentity {
    /// The normalised plate text.
    pub plate: Plate,
    /// The plate's colour.
    pub colour: PlateColour,
}

/// Why a plate text was refused. Positions are 0-based character positions in the normalised text.
/// Each variant has a stable [`PlateError::code`] for translation (zh-CN / English).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    /// Nothing left after removing separators.
    #[error("the plate is empty")]
    Empty,
    /// Longer than any plate format.
    #[error("the plate has {found} characters; no plate format is longer than 8")]
    TooLong {
        /// Characters after normalisation.
        found: usize,
    },
    /// The first character is neither a province abbreviation nor 使 / a military or WJ prefix.
    #[error("'{0}' is not a province abbreviation")]
    UnknownProvince(char),
    /// The second character must be the issuing authority's letter A–Z.
    #[error("the second character must be a letter A-Z, found '{0}'")]
    BadAuthorityLetter(char),
    /// Province plates are 7 (ordinary, suffix) or 8 (new-energy) characters.
    #[error("the plate has {found} characters; ordinary plates have 7 and new-energy plates 8")]
    WrongLength {
        /// Characters after normalisation.
        found: usize,
    },
    /// I and O are never used in serials (they look like 1 and 0).
    #[error("the letter '{letter}' at position {position} is never used on plates")]
    ForbiddenLetter {
        /// Position in the normalised text.
        position: usize,
        /// `I` or `O`.
        letter: char,
    },
    /// A character that cannot appear at this position.
    #[error("'{found}' at position {position} is not allowed there")]
    InvalidCharacter {
        /// Position in the normalised text.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// An 8-character plate that fits neither new-energy pattern.
    #[error(
        "an 8-character plate is new-energy: D/F/A/B/C/E/G/H/J/K, a letter or digit, then 4 digits; or 5 digits then D/F"
    )]
    NewEnergyFormat,
    /// 使 must be followed by exactly 6 digits.
    #[error("an embassy plate is 使 followed by 6 digits")]
    EmbassyFormat,
    /// 港 and 澳 plates are issued only as 粤Z….
    #[error("港/澳 plates are issued only as 粤Z")]
    CrossBorderNotYueZ,
    /// A suffix character (警 学 挂 港 澳 领) somewhere other than the last position.
    #[error("'{found}' may only be the last character")]
    MisplacedSuffix {
        /// The suffix character.
        found: char,
    },
}

impl PlateError {
    /// A stable snake_case code for this refusal, the key for translated messages.
    pub fn code(&self) -> &'static str {
        match self {
            PlateError::Empty => "plate_empty",
            PlateError::TooLong { .. } => "plate_too_long",
            PlateError::UnknownProvince(_) => "plate_unknown_province",
            PlateError::BadAuthorityLetter(_) => "plate_bad_authority_letter",
            PlateError::WrongLength { .. } => "plate_wrong_length",
            PlateError::ForbiddenLetter { .. } => "plate_forbidden_letter",
            PlateError::InvalidCharacter { .. } => "plate_invalid_character",
            PlateError::NewEnergyFormat => "plate_new_energy_format",
            PlateError::EmbassyFormat => "plate_embassy_format",
            PlateError::CrossBorderNotYueZ => "plate_cross_border_not_yue_z",
            PlateError::MisplacedSuffix { .. } => "plate_misplaced_suffix",
        }
    }

    /// The refusal in Chinese (zh-CN); the English text is the error's `Display`. Every route
    /// that takes a plate answers with this text and [`PlateError::code`].
    pub fn message_zh(&self) -> String {
        match self {
            PlateError::Empty => "车牌号不能为空".to_string(),
            PlateError::TooLong { found } => {
                format!("车牌号有 {found} 个字符，任何车牌都不超过 8 个")
            }
            PlateError::UnknownProvince(c) => format!("“{c}”不是省份简称"),
            PlateError::BadAuthorityLetter(c) => {
                format!("车牌第二个字符应为发牌机关字母 A-Z，实际为“{c}”")
            }
            PlateError::WrongLength { found } => {
                format!("车牌号有 {found} 个字符；普通车牌 7 个，新能源车牌 8 个")
            }
            PlateError::ForbiddenLetter { position, letter } => {
                format!("第 {} 位的字母“{letter}”不用于车牌（易与数字混淆）", position + 1)
            }
            PlateError::InvalidCharacter { position, found } => {
                format!("第 {} 位不能是“{found}”", position + 1)
            }
            PlateError::NewEnergyFormat => "8 位车牌为新能源车牌：D/F/A/B/C/E/G/H/J/K、一位字母或数字、再 4 位数字；或 5 位数字后接 D/F".to_string(),
            PlateError::EmbassyFormat => "使馆车牌为“使”加 6 位数字".to_string(),
            PlateError::CrossBorderNotYueZ => "港、澳车牌只以“粤Z”发放".to_string(),
            PlateError::MisplacedSuffix { found } => {
                format!("“{found}”只能是车牌的最后一个字符")
            }
        }
    }
}

/// Normalises plate text the way [`Plate::parse`] does (full-width → half-width, upper case,
/// separators removed) without validating it: for partial plates typed into a search box.
pub fn normalise_fragment(input: &str) -> String {
    input.chars().filter_map(normalise_char).collect()
}

/// Normalises one character: full-width ASCII to half-width, lower to upper case. Returns `None`
/// for separators, which are dropped.
fn normalise_char(c: char) -> Option<char> {
    let c = match c {
        // Full-width ASCII block U+FF01..=U+FF5E maps onto U+0021..=U+007E.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    };
    match c {
        // Separators: space, hyphen, middle dots (Latin ·, katakana ・, half-width ･, bullet •,
        // hyphenation point ‧, dot operator ⋅), tab; also what an input method or a copied
        // text puts between the parts: full stop, underscore, the Unicode dashes (‐ ‑ ‒ – — ―),
        // minus, the ideographic full stop, no-break and zero-width spaces.
        ' '
        | '\t'
        | '-'
        | '.'
        | '_'
        | '\u{00B7}'
        | '\u{30FB}'
        | '\u{FF65}'
        | '\u{2022}'
        | '\u{2027}'
        | '\u{22C5}'
        | '\u{2010}'..='\u{2015}'
        | '\u{2212}'
        | '\u{3002}'
        | '\u{00A0}'
        | '\u{200B}'
        | '\u{FEFF}' => None,
        _ => Some(c.to_ascii_uppercase()),
    }
}

/// Whether `c` is one of the 31 [`PROVINCES`].
pub fn is_province(c: char) -> bool {
    PROVINCES.contains(&c)
}

/// Puts the province chosen in a picker in front of the rest of a plate as typed, the way every
/// plate form does: the typed text is normalised ([`normalise_fragment`]: full width, lower case
/// and separators do not matter), and it gets the province only when it does not already start
/// with one (or with 使, an embassy plate). `ａｍ１２０５` with 浙 is `浙AM1205`; `苏e 12345` with
/// 浙 stays `苏E12345`. An empty `province` (the picker's "other", for military and armed police
/// plates) adds nothing, and so does an empty text (the caller reports it as missing).
pub fn with_province(province: &str, typed: &str) -> String {
    let rest = normalise_fragment(typed);
    let province = province.trim();
    match rest.chars().next() {
        None => rest,
        Some(first) if is_province(first) || first == '使' => rest,
        Some(_) => format!("{province}{rest}"),
    }
}

/// Checks one serial character: an ASCII digit or upper-case letter other than I and O.
fn serial_char(position: usize, c: char) -> Result<(), PlateError> {
    match c {
        'I' | 'O' => Err(PlateError::ForbiddenLetter {
            position,
            letter: c,
        }),
        '0'..='9' | 'A'..='Z' => Ok(()),
        _ if SUFFIXES.contains(&c) => Err(PlateError::MisplacedSuffix { found: c }),
        _ => Err(PlateError::InvalidCharacter { position, found: c }),
    }
}

fn suffix_of(c: char) -> Option<PlateSuffix> {
    Some(match c {
        '警' => PlateSuffix::Police,
        '学' => PlateSuffix::DrivingSchool,
        '挂' => PlateSuffix::Trailer,
        '港' => PlateSuffix::HongKong,
        '澳' => PlateSuffix::Macau,
        '领' => PlateSuffix::Consulate,
        _ => return None,
    })
}

/// Armed police plates: `WJ`, then a province abbreviation (`WJ京1234X`, the 2012 format), a
/// two-digit unit code (`WJ01·12345`, the older one) or nothing (headquarters, `WJ12345`), then
/// five serial characters checked like an ordinary plate's (digits and letters, never I or O).
fn armed_police(cs: &[char]) -> Result<PlateKind, PlateError> {
    let serial_from = match cs.len() {
        7 => 2,
        8 if PROVINCES.contains(&cs[2]) => 3,
        8 => return Err(PlateError::UnknownProvince(cs[2])),
        9 => {
            for (i, &c) in cs.iter().enumerate().take(4).skip(2) {
                if !c.is_ascii_digit() {
                    return Err(PlateError::InvalidCharacter {
                        position: i,
                        found: c,
                    });
                }
            }
            4
        }
        n => return Err(PlateError::WrongLength { found: n }),
    };
    for (i, &c) in cs.iter().enumerate().skip(serial_from) {
        serial_char(i, c)?;
    }
    Ok(PlateKind::Special)
}

/// Classifies normalised characters.
fn classify(cs: &[char]) -> Result<PlateKind, PlateError> {
    let Some(&first) = cs.first() else {
        return Err(PlateError::Empty);
    };
    if first == '使' {
        if cs.len() != 7 || !cs[1..].iter().all(char::is_ascii_digit) {
            return Err(PlateError::EmbassyFormat);
        }
        return Ok(PlateKind::Embassy);
    }
    if first == 'W' && cs.get(1) == Some(&'J') {
        return armed_police(cs);
    }
    if first.is_ascii_uppercase() {
        // Military (two letters + five characters): special, unvalidated beyond being plausible
        // plate characters.
        let military = cs.len() == 7
            && cs[1].is_ascii_uppercase()
            && cs[2..].iter().all(char::is_ascii_alphanumeric);
        if military {
            return Ok(PlateKind::Special);
        }
        return Err(PlateError::UnknownProvince(first));
    }
    if !PROVINCES.contains(&first) {
        return Err(PlateError::UnknownProvince(first));
    }
    match cs.get(1) {
        None => return Err(PlateError::WrongLength { found: cs.len() }),
        Some(c) if !c.is_ascii_uppercase() => return Err(PlateError::BadAuthorityLetter(*c)),
        Some(_) => {}
    }
    match cs.len() {
        7 => {
            if let Some(suffix) = suffix_of(cs[6]) {
                for (i, &c) in cs.iter().enumerate().take(6).skip(2) {
                    serial_char(i, c)?;
                }
                if matches!(suffix, PlateSuffix::HongKong | PlateSuffix::Macau)
                    && (first != '粤' || cs[1] != 'Z')
                {
                    return Err(PlateError::CrossBorderNotYueZ);
                }
                Ok(PlateKind::Suffix(suffix))
            } else {
                for (i, &c) in cs.iter().enumerate().skip(2) {
                    serial_char(i, c)?;
                }
                Ok(PlateKind::Ordinary)
            }
        }
        8 => {
            for (i, &c) in cs.iter().enumerate().skip(2) {
                serial_char(i, c)?;
            }
            let s = &cs[2..];
            let small = "DFABCEGHJK".contains(s[0]) && s[2..].iter().all(char::is_ascii_digit);
            let large = s[..5].iter().all(char::is_ascii_digit) && matches!(s[5], 'D' | 'F');
            if small {
                Ok(PlateKind::NewEnergySmall)
            } else if large {
                Ok(PlateKind::NewEnergyLarge)
            } else {
                Err(PlateError::NewEnergyFormat)
            }
        }
        n => {
            // Report a bad character before a bad length where one is obvious.
            for (i, &c) in cs.iter().enumerate().skip(2).take(n.saturating_sub(3)) {
                serial_char(i, c)?;
            }
            Err(PlateError::WrongLength { found: n })
        }
    }
}

impl Plate {
    /// Normalises `input` (full-width → half-width, upper case, separators · ・ space - removed),
    /// validates it and returns the plate, or the precise reason it is not one.
    pub fn parse(input: &str) -> Result<Plate, PlateError> {
        let mut cs = ['\0'; MAX_CHARS];
        let mut n = 0;
        for c in input.chars().filter_map(normalise_char) {
            if n == MAX_CHARS {
                let found = input.chars().filter_map(normalise_char).count();
                return Err(PlateError::TooLong { found });
            }
            cs[n] = c;
            n += 1;
        }
        let cs = &cs[..n];
        if cs.len() > 8 && !(cs.first() == Some(&'W') && cs.get(1) == Some(&'J')) {
            return Err(PlateError::TooLong { found: cs.len() });
        }
        classify(cs)?;
        let mut plate = Plate {
            len: 0,
            bytes: [0; MAX_BYTES],
        };
        for c in cs {
            let mut buf = [0u8; 4];
            let enc = c.encode_utf8(&mut buf).as_bytes();
            let at = usize::from(plate.len);
            if at + enc.len() > MAX_BYTES {
                return Err(PlateError::TooLong { found: cs.len() });
            }
            plate.bytes[at..at + enc.len()].copy_from_slice(enc);
            plate.len += enc.len() as u8;
        }
        Ok(plate)
    }

    /// [`Plate::parse`] of a plate typed beside a province picker (see [`with_province`]).
    pub fn parse_with_province(province: &str, typed: &str) -> Result<Plate, PlateError> {
        Plate::parse(&with_province(province, typed))
    }

    /// The normalised text, e.g. `京A12345`.
    pub fn as_str(&self) -> &str {
        // The bytes were written from `char`s, so they are valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The kind of plate this is.
    pub fn kind(&self) -> PlateKind {
        let mut cs = ['\0'; MAX_CHARS];
        let mut n = 0;
        for c in self.as_str().chars() {
            cs[n] = c;
            n += 1;
        }
        // A Plate was classified when it was built; this cannot fail.
        classify(&cs[..n]).unwrap_or(PlateKind::Special)
    }

    /// This plate with a colour: the identity vehicles are keyed by.
    pub fn with_colour(self, colour: PlateColour) -> PlateIdentity {
        PlateIdentity {
            plate: self,
            colour,
        }
    }
}

impl fmt::Debug for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plate({})", self.as_str())
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Plate {
    type Err = PlateError;
    fn from_str(s: &str) -> Result<Plate, PlateError> {
        Plate::parse(s)
    }
}

impl PlateColour {
    /// Every colour, in declaration order.
    pub const ALL: [PlateColour; 6] = [
        PlateColour::Blue,
        PlateColour::Yellow,
        PlateColour::Green,
        PlateColour::YellowGreen,
        PlateColour::White,
        PlateColour::Black,
    ];

    /// A stable snake_case code (`blue`, `yellow_green`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PlateColour::Blue => "blue",
            PlateColour::Yellow => "yellow",
            PlateColour::Green => "green",
            PlateColour::YellowGreen => "yellow_green",
            PlateColour::White => "white",
            PlateColour::Black => "black",
        }
    }

    /// The colour for a code produced by [`PlateColour::as_str`].
    pub fn from_code(code: &str) -> Option<PlateColour> {
        PlateColour::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for PlateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.plate, self.colour.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static str, Result<(&'static str, PlateKind), PlateError>);

    /// (input, expected normalised text and kind, or error)
    fn table() -> Vec<Case> {
        use PlateError as E;
        use PlateKind as K;
        vec![
            // Ordinary, with every separator and width.
            ("京A12345", Ok(("京A12345", K::Ordinary))),
            ("京a12345", Ok(("京A12345", K::Ordinary))),
            ("京A·12345", Ok(("京A12345", K::Ordinary))),
            ("京A・12345", Ok(("京A12345", K::Ordinary))),
            ("京 A-123 45", Ok(("京A12345", K::Ordinary))),
            ("京Ａ１２３４５", Ok(("京A12345", K::Ordinary))),
            ("京ａ　１２Ｘ４５", Ok(("京A12X45", K::Ordinary))),
            ("沪B8AB23", Ok(("沪B8AB23", K::Ordinary))),
            ("新Z00001", Ok(("新Z00001", K::Ordinary))),
            // New energy small and large.
            ("粤BD12345", Ok(("粤BD12345", K::NewEnergySmall))),
            ("粤bfx1234", Ok(("粤BFX1234", K::NewEnergySmall))),
            ("苏AK12345", Ok(("苏AK12345", K::NewEnergySmall))),
            ("浙A·A12345", Ok(("浙AA12345", K::NewEnergySmall))),
            ("京A12345D", Ok(("京A12345D", K::NewEnergyLarge))),
            ("京Ａ１２３４５Ｆ", Ok(("京A12345F", K::NewEnergyLarge))),
            // Suffix plates.
            (
                "京A1234警",
                Ok(("京A1234警", K::Suffix(PlateSuffix::Police))),
            ),
            ("鲁B123学", Err(E::WrongLength { found: 6 })),
            (
                "鲁B1234学",
                Ok(("鲁B1234学", K::Suffix(PlateSuffix::DrivingSchool))),
            ),
            (
                "冀C5678挂",
                Ok(("冀C5678挂", K::Suffix(PlateSuffix::Trailer))),
            ),
            (
                "粤Z1234港",
                Ok(("粤Z1234港", K::Suffix(PlateSuffix::HongKong))),
            ),
            (
                "粤z·1a34澳",
                Ok(("粤Z1A34澳", K::Suffix(PlateSuffix::Macau))),
            ),
            (
                "沪A1234领",
                Ok(("沪A1234领", K::Suffix(PlateSuffix::Consulate))),
            ),
            ("京A1234港", Err(E::CrossBorderNotYueZ)),
            ("粤B1234澳", Err(E::CrossBorderNotYueZ)),
            ("京A12警45", Err(E::MisplacedSuffix { found: '警' })),
            // Embassy.
            ("使123456", Ok(("使123456", K::Embassy))),
            ("使１２３-４５６", Ok(("使123456", K::Embassy))),
            ("使12345", Err(E::EmbassyFormat)),
            ("使12345A", Err(E::EmbassyFormat)),
            // Military: special, unvalidated.
            ("KA12345", Ok(("KA12345", K::Special))),
            // Armed police: special, but validated like the others.
            ("WJ京12345", Ok(("WJ京12345", K::Special))),
            ("WJ京1234X", Ok(("WJ京1234X", K::Special))),
            ("wj 01-12345", Ok(("WJ0112345", K::Special))),
            ("WJ·12345", Ok(("WJ12345", K::Special))),
            (
                "WJ京12$45",
                Err(E::InvalidCharacter {
                    position: 5,
                    found: '$',
                }),
            ),
            (
                "WJ京1234I",
                Err(E::ForbiddenLetter {
                    position: 7,
                    letter: 'I',
                }),
            ),
            ("WJ英12345", Err(E::UnknownProvince('英'))),
            (
                "WJ0A12345",
                Err(E::InvalidCharacter {
                    position: 3,
                    found: 'A',
                }),
            ),
            ("WJ京123", Err(E::WrongLength { found: 6 })),
            ("WJ京1234567", Err(E::WrongLength { found: 10 })),
            ("WJ<script>", Err(E::WrongLength { found: 10 })),
            (
                "WJ京12\u{7}45",
                Err(E::InvalidCharacter {
                    position: 5,
                    found: '\u{7}',
                }),
            ),
            // I and O.
            (
                "京A1I345",
                Err(E::ForbiddenLetter {
                    position: 3,
                    letter: 'I',
                }),
            ),
            (
                "京AO2345",
                Err(E::ForbiddenLetter {
                    position: 2,
                    letter: 'O',
                }),
            ),
            (
                "粤BDO2345",
                Err(E::ForbiddenLetter {
                    position: 3,
                    letter: 'O',
                }),
            ),
            (
                "京A1234o",
                Err(E::ForbiddenLetter {
                    position: 6,
                    letter: 'O',
                }),
            ),
            // Unknown provinces and prefixes.
            ("港A12345", Err(E::UnknownProvince('港'))),
            ("北A12345", Err(E::UnknownProvince('北'))),
            ("A12345", Err(E::UnknownProvince('A'))),
            ("1A12345", Err(E::UnknownProvince('1'))),
            // Authority letter.
            ("京112345", Err(E::BadAuthorityLetter('1'))),
            ("京京12345", Err(E::BadAuthorityLetter('京'))),
            // Lengths.
            ("", Err(E::Empty)),
            (" · - ", Err(E::Empty)),
            ("京", Err(E::WrongLength { found: 1 })),
            ("京A1234", Err(E::WrongLength { found: 6 })),
            ("京A123456789", Err(E::TooLong { found: 11 })),
            ("京A1234567", Err(E::TooLong { found: 9 })),
            // New energy shapes.
            ("粤BX12345", Err(E::NewEnergyFormat)),
            ("粤B1234DD", Err(E::NewEnergyFormat)),
            ("粤BD1234A", Err(E::NewEnergyFormat)),
            // Characters that are not plate characters at all.
            (
                "京A12#45",
                Err(E::InvalidCharacter {
                    position: 4,
                    found: '#',
                }),
            ),
            (
                "京A1234é",
                Err(E::InvalidCharacter {
                    position: 6,
                    found: 'é',
                }),
            ),
        ]
    }

    #[test]
    fn every_plate_format_is_normalised_classified_or_refused_precisely() {
        for (input, expected) in table() {
            let got = Plate::parse(input).map(|p| (p.as_str().to_owned(), p.kind()));
            let expected = expected.map(|(s, k)| (s.to_owned(), k));
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn full_width_lower_case_and_separated_forms_are_the_same_plate() {
        let a = Plate::parse("京A12345").unwrap();
        for variant in [
            "京a12345",
            "京Ａ·１２３４５",
            "京-a 123-45",
            "京ａ１２３４５",
        ] {
            assert_eq!(Plate::parse(variant).unwrap(), a, "{variant}");
        }
    }

    #[test]
    fn separators_from_input_methods_and_copied_text_are_dropped() {
        let a = Plate::parse("京A12345").unwrap();
        for variant in [
            "京A.12345",
            "京A．12345",
            "京A_12345",
            "京A–12345",
            "京A—12345",
            "京A－12345",
            "京A\u{00A0}12345",
            "\u{FEFF}京A\u{200B}12345",
            "京A。12345",
            "\t京 A 1 2 3 4 5 ",
        ] {
            assert_eq!(Plate::parse(variant).unwrap(), a, "{variant:?}");
        }
    }

    #[test]
    fn a_plate_typed_beside_the_province_picker_gets_the_province_only_when_it_has_none() {
        for (province, typed, expected) in [
            ("浙", "ａｍ１２０５", "浙AM1205"),
            ("浙", "am1205", "浙AM1205"),
            ("浙", "AM·1205", "浙AM1205"),
            ("浙", " a-m 12 05 ", "浙AM1205"),
            ("浙", "Ａ・Ｍ１２０５", "浙AM1205"),
            ("浙", "浙ａｍ１２０５", "浙AM1205"),
            ("浙", "苏e 12345", "苏E12345"),
            ("京", "使１２３４５６", "使123456"),
            ("粤", "bd12345", "粤BD12345"),
            ("粤", "z1234港", "粤Z1234港"),
            ("", "WJ京12345", "WJ京12345"),
            ("", "ka12345", "KA12345"),
        ] {
            let plate = Plate::parse_with_province(province, typed)
                .unwrap_or_else(|e| panic!("{province} + {typed:?}: {e}"));
            assert_eq!(plate.as_str(), expected, "{province} + {typed:?}");
        }
        assert_eq!(with_province("浙", "  "), "");
        assert_eq!(
            Plate::parse_with_province("浙", "ａｍ１２"),
            Err(PlateError::WrongLength { found: 5 })
        );
        assert_eq!(
            Plate::parse_with_province("浙", "北A12345"),
            Err(PlateError::BadAuthorityLetter('北'))
        );
    }

    #[test]
    fn every_province_is_recognised_and_nothing_else_is() {
        for p in PROVINCES {
            assert!(is_province(p));
            assert_eq!(
                with_province("京", &format!("{p}A12345")),
                format!("{p}A12345")
            );
        }
        for c in ['使', '港', 'A', '1', 'Ａ', '北'] {
            assert!(!is_province(c), "{c}");
        }
    }

    #[test]
    fn identity_keeps_the_colour_so_blue_and_yellow_are_different_vehicles() {
        let p = Plate::parse("京A12345").unwrap();
        assert_ne!(
            p.with_colour(PlateColour::Blue),
            p.with_colour(PlateColour::Yellow)
        );
    }

    #[test]
    fn colour_codes_round_trip_and_errors_have_distinct_codes() {
        for c in PlateColour::ALL {
            assert_eq!(PlateColour::from_code(c.as_str()), Some(c));
        }
        let mut codes: Vec<_> = table()
            .into_iter()
            .filter_map(|(_, r)| r.err())
            .map(|e| e.code())
            .collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 11, "every error variant is covered: {codes:?}");
    }

    #[test]
    fn a_plate_is_a_small_inline_value() {
        assert_eq!(std::mem::size_of::<Plate>(), 16);
    }
}
