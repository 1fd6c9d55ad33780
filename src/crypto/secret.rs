//! Wrappers for secret bytes: wiped on drop, never printed.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A fixed-size secret byte string.
///
/// # Security
///
/// The bytes are overwritten with zeros when the value is dropped. `Debug`
/// prints `<redacted>`; there is no `Display` and no `Serialize`. The only way
/// to read the bytes is [`SecretBytes::expose_secret`], which makes every use
/// easy to find in review. Copies that the caller makes from the exposed slice
/// are the caller's to wipe.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Takes ownership of `bytes`; the caller's copy is wiped.
    pub fn new(bytes: &mut [u8; N]) -> Self {
        let out = Self(*bytes);
        bytes.zeroize();
        out
    }

    /// Reads the secret bytes.
    pub fn expose_secret(&self) -> &[u8; N] {
        &self.0
    }

    /// Mutable access, for filling the buffer in place (for example as the
    /// output of a key derivation function) without a stack copy.
    pub fn expose_secret_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }

    /// An all-zero buffer, to be filled through [`Self::expose_secret_mut`].
    pub fn zeroed() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_new_wipes_source() {
        let mut raw = [7u8; 32];
        let secret = SecretBytes::new(&mut raw);
        assert_eq!(raw, [0u8; 32]);
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose_secret(), &[7u8; 32]);
    }
}
