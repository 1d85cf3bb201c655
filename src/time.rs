//! Wall-clock formatting without a date library: the dispatcher only ever prints "now".

/// Formats seconds and nanoseconds since the Unix epoch as RFC 3339 UTC with milliseconds,
/// e.g. `2026-11-27T00:31:13.042Z`. Digits are written by hand (see `request_id::generate`).
pub fn rfc3339_millis(seconds: u64, nanoseconds: u32) -> String {
    let days = (seconds / 86_400) as i64;
    let secs_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_digits(&mut out, month.into(), 2);
    out.push('-');
    push_digits(&mut out, day.into(), 2);
    out.push('T');
    push_digits(&mut out, secs_of_day / 3600, 2);
    out.push(':');
    push_digits(&mut out, (secs_of_day / 60) % 60, 2);
    out.push(':');
    push_digits(&mut out, secs_of_day % 60, 2);
    out.push('.');
    push_digits(&mut out, u64::from(nanoseconds / 1_000_000), 3);
    out.push('Z');
    out
}

/// Appends `value` as exactly `width` decimal digits (zero-padded; higher digits dropped).
pub fn push_digits(out: &mut String, mut value: u64, width: u32) {
    let mut digits = [b'0'; 20];
    for slot in digits[..width as usize].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    for &digit in &digits[..width as usize] {
        out.push(digit as char);
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
