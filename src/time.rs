//! Wall-clock formatting for the access log: the dispatcher only ever prints "now".

use std::time::{Duration, UNIX_EPOCH};

/// Formats seconds and nanoseconds since the Unix epoch as RFC 3339 UTC with milliseconds,
/// e.g. `2026-11-27T00:31:13.042Z`.
pub fn rfc3339_millis(seconds: u64, nanoseconds: u32) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::new(seconds, nanoseconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_known_dates() {
        assert_eq!(rfc3339_millis(0, 0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1795739473` = Fri Nov 27 00:31:13 UTC 2026
        assert_eq!(rfc3339_millis(1_795_739_473, 42_999_999), "2026-11-27T00:31:13.042Z");
        // Leap day.
        assert_eq!(rfc3339_millis(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(4_102_444_799, 999_000_000), "2099-12-31T23:59:59.999Z");
    }
}
