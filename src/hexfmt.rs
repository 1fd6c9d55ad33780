//! Strict fixed-length hex parsing, shared by every reader of public files.
//!
//! Errors say which rule was broken so that a reader can name the field and
//! the problem ("expected 96 hex characters, got 95").

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// A `0x` prefix where the format wants bare hex.
    #[error("must be bare hex without a 0x prefix")]
    UnexpectedPrefix,
    /// A missing `0x` prefix where the format wants one.
    #[error("must start with 0x")]
    MissingPrefix,
    /// The string has the wrong number of hex digits.
    #[error("expected {expected} hex characters, got {got}")]
    WrongLength {
        /// Digits the field must have.
        expected: usize,
        /// Digits it had.
        got: usize,
    },
    /// A character that is not a hex digit.
    #[error("invalid hex character {character:?} at position {position}")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its position in the string (0-based, after any prefix).
        position: usize,
    },
}

/// Whether a `0x` prefix is required, refused or optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Bare hex only (deposit data, keystores).
    Forbidden,
    /// `0x` required (EIP-3076, addresses).
    Required,
    /// Either form.
    Optional,
}

/// Decodes exactly `N` bytes of hex.
///
/// # Errors
///
/// A [`HexError`] naming the first rule the string breaks.
pub fn decode_fixed<const N: usize>(text: &str, prefix: Prefix) -> Result<[u8; N], HexError> {
    let digits = strip(text, prefix)?;
    if digits.len() != 2 * N {
        return Err(HexError::WrongLength {
            expected: 2 * N,
            got: digits.chars().count(),
        });
    }
    let mut out = [0u8; N];
    decode_into(digits, &mut out)?;
    Ok(out)
}

/// Decodes hex of any even length.
///
/// # Errors
///
/// A [`HexError`] naming the first rule the string breaks.
pub fn decode_vec(text: &str, prefix: Prefix) -> Result<Vec<u8>, HexError> {
    let digits = strip(text, prefix)?;
    if digits.len() % 2 != 0 {
        return Err(HexError::WrongLength {
            expected: digits.len() + 1,
            got: digits.len(),
        });
    }
    let mut out = vec![0u8; digits.len() / 2];
    decode_into(digits, &mut out)?;
    Ok(out)
}

fn strip(text: &str, prefix: Prefix) -> Result<&str, HexError> {
    let stripped = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    match (prefix, stripped) {
        (Prefix::Forbidden, Some(_)) => Err(HexError::UnexpectedPrefix),
        (Prefix::Required, None) => Err(HexError::MissingPrefix),
        (_, Some(rest)) => Ok(rest),
        (_, None) => Ok(text),
    }
}

fn decode_into(digits: &str, out: &mut [u8]) -> Result<(), HexError> {
    if let Some((position, character)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit())
    {
        return Err(HexError::InvalidCharacter {
            character,
            position,
        });
    }
    // Every character is an ASCII hex digit, so the length checks above were
    // in bytes and characters alike, and decoding cannot fail.
    hex::decode_to_slice(digits, out).map_err(|_| HexError::WrongLength {
        expected: 2 * out.len(),
        got: digits.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_lengths_and_prefixes() {
        assert_eq!(
            decode_fixed::<2>("abCD", Prefix::Forbidden).unwrap(),
            [0xab, 0xcd]
        );
        assert_eq!(
            decode_fixed::<2>("0xabcd", Prefix::Required).unwrap(),
            [0xab, 0xcd]
        );
        assert_eq!(
            decode_fixed::<2>("0xabcd", Prefix::Optional).unwrap(),
            [0xab, 0xcd]
        );
        assert_eq!(
            decode_fixed::<2>("0xabcd", Prefix::Forbidden),
            Err(HexError::UnexpectedPrefix)
        );
        assert_eq!(
            decode_fixed::<2>("abcd", Prefix::Required),
            Err(HexError::MissingPrefix)
        );
        assert_eq!(
            decode_fixed::<2>("abc", Prefix::Forbidden),
            Err(HexError::WrongLength {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(
            decode_fixed::<2>("abcg", Prefix::Forbidden),
            Err(HexError::InvalidCharacter {
                character: 'g',
                position: 3
            })
        );
        // Multi-byte characters must not slip through a byte-length check.
        assert!(decode_fixed::<2>("ab\u{e9}", Prefix::Forbidden).is_err());
        assert_eq!(decode_vec("", Prefix::Forbidden).unwrap(), Vec::<u8>::new());
        assert!(decode_vec("abc", Prefix::Forbidden).is_err());
    }
}
