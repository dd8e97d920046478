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
                let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                let b = hex::decode(compact).map_err(|_| TagBytesError::NotHex)?;
                $name::from_bytes(&b)
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
    fn epcs_of_different_lengths_with_the_same_prefix_differ() {
        assert_ne!(
            Epc::from_bytes(&[1, 0]).unwrap(),
            Epc::from_bytes(&[1]).unwrap()
        );
    }
}
