//! The dispatcher's bounds on a PostgreSQL lookup, added to the operator's connection string.
//! A WASI 0.2 guest cannot interrupt a Postgres call, so the limits travel with the connection:
//! `connect_timeout` (whole seconds, at least 1) and a `statement_timeout` in `options`.
//! Spin parses the string with tokio-postgres, which takes both forms libpq does: a URL
//! (`postgres://…?k=v`) and `key=value` pairs. Whatever the operator set stays: their
//! `connect_timeout` wins, their `statement_timeout` wins, and other `options` (a `search_path`)
//! are kept, with the dispatcher's timeout added after them.

/// The connection string is neither form. The string is a secret: the reason never quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparseable(pub &'static str);

pub fn with_timeouts(raw: &str, db_timeout_ms: u64) -> Result<String, Unparseable> {
    let raw = raw.trim();
    let connect_s = db_timeout_ms.div_ceil(1000).max(1).to_string();
    let statement = format!("-c statement_timeout={db_timeout_ms}");
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(url_form(raw, &connect_s, &statement))
    } else {
        key_value_form(raw, &connect_s, &statement)
    }
}

fn url_form(raw: &str, connect_s: &str, statement: &str) -> String {
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    if !pairs.iter().any(|(k, _)| k == "connect_timeout") {
        pairs.push(("connect_timeout".into(), connect_s.into()));
    }
    match pairs.iter_mut().find(|(k, _)| k == "options") {
        Some((_, value)) => {
            let decoded = percent_decode(value);
            if !decoded.contains("statement_timeout") {
                *value = percent_encode(&format!("{decoded} {statement}"));
            }
        }
        None => pairs.push(("options".into(), percent_encode(statement))),
    }
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{base}?{}", query.join("&"))
}

/// `key=value` pairs separated by spaces; a value may be single-quoted, with `\'` and `\\`.
fn key_value_form(raw: &str, connect_s: &str, statement: &str) -> Result<String, Unparseable> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || key.is_empty() {
            return Err(Unparseable("not a postgres:// URL, and not key=value pairs"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or(Unparseable("an escape at the end"))?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(Unparseable("a quoted value is not closed")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
    if pairs.is_empty() {
        return Err(Unparseable("empty"));
    }
    if !pairs.iter().any(|(k, _)| k == "connect_timeout") {
        pairs.push(("connect_timeout".into(), connect_s.into()));
    }
    match pairs.iter_mut().find(|(k, _)| k == "options") {
        Some((_, value)) if !value.contains("statement_timeout") => {
            *value = format!("{value} {statement}");
        }
        Some(_) => {}
        None => pairs.push(("options".into(), statement.into())),
    }
    Ok(pairs
        .into_iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" "))
}

fn percent_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// What stays unescaped in a query value: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn percent_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gets_timeouts_unless_it_has_them() {
        assert_eq!(
            with_timeouts("postgres://u@h:5432/db", 2500).unwrap(),
            "postgres://u@h:5432/db?connect_timeout=3&options=-c%20statement_timeout%3D2500"
        );
        assert_eq!(
            with_timeouts("postgresql://h/db?sslmode=disable", 100).unwrap(),
            "postgresql://h/db?sslmode=disable&connect_timeout=1&options=-c%20statement_timeout%3D100"
        );
        let explicit = "postgres://h/db?connect_timeout=9&options=-c%20statement_timeout%3D1";
        assert_eq!(with_timeouts(explicit, 100).unwrap(), explicit);
    }

    #[test]
    fn a_urls_own_options_are_kept_and_the_timeout_added() {
        assert_eq!(
            with_timeouts("postgres://h/db?options=-c%20search_path%3Dapp", 2000).unwrap(),
            "postgres://h/db?options=-c%20search_path%3Dapp%20-c%20statement_timeout%3D2000&connect_timeout=2"
        );
        assert_eq!(
            percent_decode("-c%20search_path%3Dapp%20-c%20statement_timeout%3D2000"),
            "-c search_path=app -c statement_timeout=2000"
        );
    }

    #[test]
    fn key_value_strings_work_too() {
        assert_eq!(
            with_timeouts("host=db user=libra dbname=libra", 2000).unwrap(),
            "host='db' user='libra' dbname='libra' connect_timeout='2' options='-c statement_timeout=2000'"
        );
        assert_eq!(
            with_timeouts(
                "host = db password='it\\'s' options='-c search_path=app' connect_timeout=9",
                1500
            )
            .unwrap(),
            "host='db' password='it\\'s' options='-c search_path=app -c statement_timeout=1500' connect_timeout='9'"
        );
    }

    #[test]
    fn anything_else_is_a_clear_error_that_does_not_quote_it() {
        for bad in ["", "mysql://x", "host", "host='unclosed", "=x"] {
            let error = with_timeouts(bad, 100).unwrap_err();
            assert!(!error.0.contains("unclosed") && !error.0.contains("mysql"), "{bad}");
        }
    }
}
