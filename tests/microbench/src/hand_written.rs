//! The dispatcher's former hand-written versions of the request id, the timestamp and the log
//! line (removed at the commit that added this file, because `main.rs` measured each one's gain
//! at well under 2 µs per request). They stay here so the comparison can be run again.

use libra_dispatcher::log::LogLine;

pub fn request_id(mut bytes: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(HEX[usize::from(byte >> 4)] as char);
        id.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    id
}

pub fn timestamp(seconds: u64, nanoseconds: u32) -> String {
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

/// A request's log line as the dispatcher wrote it by hand (the request fields only).
pub fn log_line(log: &LogLine) -> String {
    let mut line = String::with_capacity(256);
    line.push_str("{\"time\":");
    push_json_string(&mut line, log.time);
    for (key, value) in [
        ("level", Some(log.level)),
        ("requestId", Some(log.request_id)),
        ("method", log.method),
        ("host", log.host.flatten()),
        ("path", log.path),
        ("route", log.route.flatten()),
        ("worker", log.worker.flatten()),
        ("location", log.location.flatten()),
    ] {
        push_key(&mut line, key);
        match value {
            Some(value) => push_json_string(&mut line, value),
            None => line.push_str("null"),
        }
    }
    let status = log.status.unwrap_or(0);
    push_key(&mut line, "status");
    push_digits(&mut line, status.into(), digit_count(status.into()));
    push_key(&mut line, "durationMs");
    let hundredths = (log.duration_ns.unwrap_or(0) + 5_000) / 10_000;
    push_digits(&mut line, hundredths / 100, digit_count(hundredths / 100));
    line.push('.');
    push_digits(&mut line, hundredths % 100, 2);
    if let Some(error) = log.error {
        push_key(&mut line, "error");
        push_json_string(&mut line, error);
    }
    line.push('}');
    line
}
fn push_key(line: &mut String, key: &str) {
    line.push_str(",\"");
    line.push_str(key);
    line.push_str("\":");
}

/// A JSON string (RFC 8259): quotes, backslashes and control characters escaped.
fn push_json_string(line: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                line.push_str("\\u00");
                line.push(HEX[(u32::from(c) >> 4) as usize] as char);
                line.push(HEX[(u32::from(c) & 0xf) as usize] as char);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

fn digit_count(value: u64) -> u32 {
    value.checked_ilog10().map_or(1, |log| log + 1)
}
