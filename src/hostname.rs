//! Host names as the dispatcher reads them, from the `Host` header or its settings: validated
//! and normalised (lowercase, no port, no trailing dot). Primitives only: this module uses
//! nothing else of the crate, so everything may use it.

/// Not a host name (with an optional port) the dispatcher accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHost;

const MAX_HOST_LEN: usize = 253;

/// The routing name of a `Host` value (RFC 9110 `uri-host [ ":" port ]`): lowercase, without
/// the port and one trailing dot.
pub fn normalise_name(authority: &str) -> Result<String, InvalidHost> {
    if authority.starts_with('[') {
        return normalise_ipv6_authority(authority);
    }
    // Every request runs this for its own host and for each configured one, so it checks and
    // lowercases in one pass over the bytes: split, trimmed, checked label by label and then
    // lowercased, `localhost` took about 1,400 WebAssembly instructions (`scripts/bench
    // profile`). `tests::agrees_with_the_plain_reading` holds it to that plain reading.
    let bytes = authority.as_bytes();
    let mut label_len = 0usize;
    let mut last = b'.';
    let mut end = bytes.len();
    let mut upper = false;
    for (at, &byte) in bytes.iter().enumerate() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' => {}
            b'A'..=b'Z' => upper = true,
            // A label neither starts nor ends with a hyphen, and is never empty.
            b'-' if label_len > 0 => {}
            b'.' if label_len > 0 && last != b'-' => {
                label_len = 0;
                last = byte;
                continue;
            }
            b':' => {
                end = at;
                break;
            }
            _ => return Err(InvalidHost),
        }
        label_len += 1;
        if label_len > 63 {
            return Err(InvalidHost);
        }
        last = byte;
    }
    // One trailing dot names the root: `example.com.` is `example.com`.
    let host = &authority[..end];
    let host = if last == b'.' {
        &host[..host.len().saturating_sub(1)]
    } else {
        host
    };
    let port = authority[end..].strip_prefix(':').unwrap_or("");
    if host.is_empty() || last == b'-' || host.len() > MAX_HOST_LEN || !valid_port(port) {
        return Err(InvalidHost);
    }
    // Most hosts come lowercase already: a copy is cheaper than lowercasing.
    Ok(if upper {
        host.to_ascii_lowercase()
    } else {
        host.to_owned()
    })
}

/// `[<IPv6 address>]` with an optional port, lowercased.
fn normalise_ipv6_authority(authority: &str) -> Result<String, InvalidHost> {
    if !authority.is_ascii() {
        return Err(InvalidHost);
    }
    let end = authority.find(']').ok_or(InvalidHost)?;
    let (host, rest) = authority.split_at(end + 1);
    let port = match rest {
        "" => "",
        _ => rest.strip_prefix(':').ok_or(InvalidHost)?,
    };
    if !valid_port(port) {
        return Err(InvalidHost);
    }
    Ok(valid_ipv6_literal(host)?.to_ascii_lowercase())
}

/// RFC 9110 4.2.3 (and 3986): an empty port is the scheme's default, so `localhost:` is fine.
fn valid_port(port: &str) -> bool {
    port.is_empty()
        || (port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p <= 65_535))
}

/// A name a tenant could have registered: at least two labels, and a top-level label with a
/// letter in it, which leaves out IPv4 literals (`10.0.0.1`, and shorthands like `10.1`),
/// bracketed IPv6 literals and single names (`localhost`, `intranet`). Label and length rules
/// were checked by [`normalise_name`].
pub fn is_plausible_domain(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((rest, top)) => !rest.is_empty() && top.bytes().any(|b| b.is_ascii_alphabetic()),
        None => false,
    }
}

/// `[<IPv6 address>]`, checked by the standard library's parser: no zone, no IPvFuture.
fn valid_ipv6_literal(host: &str) -> Result<&str, InvalidHost> {
    let inner = &host[1..host.len() - 1];
    match inner.parse::<std::net::Ipv6Addr>() {
        Ok(_) => Ok(host),
        Err(_) => Err(InvalidHost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `normalise_name` must do, read plainly: split off the port, check it, drop one
    /// trailing dot, check each label, lowercase.
    fn plain_reading(authority: &str) -> Result<String, InvalidHost> {
        if authority.is_empty() || !authority.is_ascii() {
            return Err(InvalidHost);
        }
        if authority.starts_with('[') {
            return normalise_ipv6_authority(authority);
        }
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        if !valid_port(port) {
            return Err(InvalidHost);
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if host.is_empty() || host.len() > MAX_HOST_LEN || !host.split('.').all(valid_label) {
            return Err(InvalidHost);
        }
        Ok(host.to_ascii_lowercase())
    }

    #[test]
    fn names_and_ports() {
        let ok = [
            ("Hello.LocalHost:3000", "hello.localhost"),
            ("example.com.", "example.com"),
            ("localhost:", "localhost"),
            ("a-b.c", "a-b.c"),
            ("10.0.0.1:65535", "10.0.0.1"),
            ("[::1]:80", "[::1]"),
            ("[FE80::1]", "[fe80::1]"),
        ];
        for (raw, name) in ok {
            assert_eq!(normalise_name(raw), Ok(name.to_string()), "{raw}");
        }
        let label63 = "a".repeat(63);
        assert!(normalise_name(&label63).is_ok());
        let bad = [
            "",
            ".",
            "a..",
            ".a",
            "-a",
            "a-",
            "a-.b",
            "a.-b",
            "a_b",
            "a b",
            "é.com",
            "a:65536",
            "a:1x",
            "a:123456",
            ":80",
            "a:b:c",
            "[::1",
            "[::1]x",
            "[zz]",
            "[::1]:99999",
        ];
        for raw in bad {
            assert_eq!(normalise_name(raw), Err(InvalidHost), "{raw:?}");
        }
        assert!(normalise_name(&"a".repeat(64)).is_err(), "a 64-byte label");
        let long = [label63.as_str(); 4].join(".");
        assert_eq!(long.len(), 255);
        assert!(normalise_name(&long).is_err(), "255 bytes");
        assert!(normalise_name(&long[2..]).is_ok(), "253 bytes");
        assert!(
            normalise_name(&format!("{}.", &long[2..])).is_ok(),
            "253 bytes and the root's dot"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_the_plain_reading(raw in "[a-cA-C0-9.:\\-\\[\\]_é]{0,12}") {
            prop_assert_eq!(normalise_name(&raw), plain_reading(&raw));
        }

        #[test]
        fn agrees_with_the_plain_reading_at_the_length_limits(
            labels in prop::collection::vec(("[a-zA-Z0-9-]{0,65}", prop::bool::ANY), 1..6),
            port in "(:[0-9]{0,6})?",
        ) {
            let raw: String = labels
                .iter()
                .map(|(label, dot)| if *dot { format!("{label}.") } else { label.clone() })
                .collect::<String>()
                + port.as_str();
            prop_assert_eq!(normalise_name(&raw), plain_reading(&raw));
        }
    }
}
