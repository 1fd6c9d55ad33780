//! `createdAt`: when a keyshares file was made, an RFC 3339 timestamp.
//!
//! ssv-dkg writes Go's `time.Time` of `time.Now().UTC()`, which its JSON
//! encoder prints as RFC 3339 with nanoseconds and the trailing zeros of the
//! fraction cut (`2024-10-21T09:56:54.354903Z`); ssv-keys writes JavaScript's
//! `toISOString()` (`2023-12-10T09:46:49.972Z`). No SSV tool checks more than
//! that the field is there. dvkg writes Go's form, and every operator of a
//! ceremony writes the same value, the one the definition commits to.

use std::fmt;

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found:?} is not an RFC 3339 timestamp such as 2024-10-21T09:56:54.354903Z")]
pub struct CreatedAtError {
    /// The string given.
    pub found: String,
}

/// A validated `createdAt` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreatedAt(String);

impl CreatedAt {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, keeping the text.
    ///
    /// # Errors
    ///
    /// [`CreatedAtError`] for anything else.
    pub fn parse(text: &str) -> Result<Self, CreatedAtError> {
        if is_rfc3339(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CreatedAtError {
                found: text.to_owned(),
            })
        }
    }

    /// The UTC time `seconds` and `nanos` after the Unix epoch, written as Go
    /// writes a `time.Time` in JSON (RFC 3339, fraction without trailing
    /// zeros, none when zero).
    pub fn from_unix(seconds: u64, nanos: u32) -> Self {
        let days = seconds / 86_400;
        let rest = seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        let mut text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        );
        let nanos = nanos % 1_000_000_000;
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        text.push('Z');
        Self(text)
    }

    /// Now, in UTC.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_unix(since.as_secs(), since.subsec_nanos())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CreatedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| !s.is_empty() && s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19)
        && (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10))
        && number(11..13) < 24
        && number(14..16) < 60
        && number(17..19) < 61;
    if !date_time {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3)
                && at(i + 3, b':')
                && digits(i + 4..i + 6)
                && i + 6 == b.len()
                && number(i + 1..i + 3) < 24
                && number(i + 4..i + 6) < 60
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_and_javascript_forms_parse() {
        for ok in [
            "2024-10-21T09:56:54.354903Z",
            "2024-03-19T19:17:47.13819546Z",
            "2023-12-10T09:46:49.972Z",
            "2025-01-08T14:08:17Z",
            "2025-01-08T14:08:17+02:00",
        ] {
            assert_eq!(CreatedAt::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "2025-01-08T14:08:17",
            "2025-01-08 14:08:17Z",
            "2025-13-08T14:08:17Z",
            "2025-01-08T14:08:17.Z",
            "2025-01-08T14:08:17Zjunk",
            "yesterday",
        ] {
            assert!(CreatedAt::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unix_times_are_written_as_go_writes_them() {
        // 2024-10-21T09:56:54.354903Z, the createdAt of an ssv-dkg ceremony.
        assert_eq!(
            CreatedAt::from_unix(1_729_504_614, 354_903_000).as_str(),
            "2024-10-21T09:56:54.354903Z"
        );
        assert_eq!(CreatedAt::from_unix(0, 0).as_str(), "1970-01-01T00:00:00Z");
        assert_eq!(
            CreatedAt::from_unix(951_782_400, 100_000_000).as_str(),
            "2000-02-29T00:00:00.1Z"
        );
        assert!(CreatedAt::parse(CreatedAt::now().as_str()).is_ok());
    }
}
