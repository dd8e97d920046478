//! UHF tag identifiers: the EPC a reader reports and the factory TID a credential may be bound to.
//!
//! Both are stored inline (up to 16 bytes, covering 96- and 128-bit EPCs and the usual 64/96-bit
//! TIDs) so the gate's index holds a million of them without a heap allocation each. Longer values
//! are refused with [`TagBytesError::TooLong`]: such a tag cannot be a credential of ours.
//! This module never talks to a reader.

use std::fmt;

/// Longest EPC / TID stored, in bytes.
pub const MAX_TAG_BYTES: usize = 16;

/// Why bytes could not become an [`Epc`] or [`Tid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagBytesError {
    /// No bytes at all.
    #[error("the tag identifier is empty")]
    Empty,
    /// Longer than [`MAX_TAG_BYTES`].
    #[error("the tag identifier has {0} bytes; at most 16 are supported")]
    TooLong(usize),
    /// Text that is not hexadecimal.
    #[error("the tag identifier is not hexadecimal")]
    NotHex,
}

macro_rules! tag_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            len: u8,
            bytes: [u8; MAX_TAG_BYTES],
        }

        impl $name {
            /// Wraps 1..=16 bytes.
            pub fn from_bytes(b: &[u8]) -> Result<$name, TagBytesError> {
                if b.is_empty() {
                    return Err(TagBytesError::Empty);
                }
                if b.len() > MAX_TAG_BYTES {
                    return Err(TagBytesError::TooLong(b.len()));
                }
                let mut bytes = [0; MAX_TAG_BYTES];
                bytes[..b.len()].copy_from_slice(b);
                Ok($name { len: b.len() as u8, bytes })
            }

            /// Parses hexadecimal text (either case, spaces ignored), e.g. `E2003098881900722140369E`.
            pub fn from_hex(s: &str) -> Result<$name, TagBytesError> {
                // Decoded in place: a gate loads a million of these at start.
                let mut bytes = [0; MAX_TAG_BYTES];
                let mut digits = 0;
                for c in s.chars().filter(|c| !c.is_whitespace()) {
                    let v = c.to_digit(16).ok_or(TagBytesError::NotHex)? as u8;
                    if let Some(b) = bytes.get_mut(digits / 2) {
                        *b |= if digits % 2 == 0 { v << 4 } else { v };
                    }
                    digits += 1;
                }
                if digits % 2 == 1 {
                    return Err(TagBytesError::NotHex);
                }
                match digits / 2 {
                    0 => Err(TagBytesError::Empty),
                    n if n > MAX_TAG_BYTES => Err(TagBytesError::TooLong(n)),
                    n => Ok($name { len: n as u8, bytes }),
                }
            }

            /// The bytes, as the reader reported them.
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes[..usize::from(self.len)]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.as_bytes() {
                    write!(f, "{b:02X}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
    };
}

tag_bytes!(
    /// A tag's EPC (electronic product code): plain data any writer can copy to another tag.
    Epc
);
tag_bytes!(
    /// A tag's factory TID: burnt in by the chip maker, which is what makes a cloned EPC detectable.
    Tid
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epc_parses_from_hex_and_prints_back_in_upper_case() {
        let e = Epc::from_hex("e200 3098 8819 0072 2140 369e").unwrap();
        assert_eq!(e.as_bytes().len(), 12);
        assert_eq!(e.to_string(), "E2003098881900722140369E");
    }

    #[test]
    fn identifiers_longer_than_16_bytes_or_empty_are_refused() {
        assert_eq!(Epc::from_bytes(&[0; 17]), Err(TagBytesError::TooLong(17)));
        assert_eq!(Tid::from_bytes(&[]), Err(TagBytesError::Empty));
        assert_eq!(Epc::from_hex("zz"), Err(TagBytesError::NotHex));
    }

    #[test]
    fn hex_text_that_is_odd_empty_too_long_or_not_ascii_hex_says_which() {
        assert_eq!(Epc::from_hex("E20"), Err(TagBytesError::NotHex));
        assert_eq!(Epc::from_hex(" "), Err(TagBytesError::Empty));
        assert_eq!(
            Epc::from_hex(&"AB".repeat(17)),
            Err(TagBytesError::TooLong(17))
        );
        assert_eq!(
            Epc::from_hex(&"AB".repeat(20)),
            Err(TagBytesError::TooLong(20))
        );
        assert_eq!(Epc::from_hex("E2٣0"), Err(TagBytesError::NotHex));
        assert_eq!(Epc::from_hex("0x12"), Err(TagBytesError::NotHex));
        assert_eq!(
            Epc::from_hex(&"Ab".repeat(16)).unwrap().as_bytes(),
            &[0xAB; 16]
        );
        assert_eq!(Tid::from_hex("0f").unwrap().as_bytes(), &[0x0F]);
    }

    #[test]
    fn epcs_of_different_lengths_with_the_same_prefix_differ() {
        assert_ne!(
            Epc::from_bytes(&[1, 0]).unwrap(),
            Epc::from_bytes(&[1]).unwrap()
        );
    }
}
