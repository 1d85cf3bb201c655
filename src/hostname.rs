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
    if authority.is_empty() || !authority.is_ascii() {
        return Err(InvalidHost);
    }
    let (host, port) = split_port(authority)?;
    // RFC 9110 4.2.3 (and 3986): an empty port is the scheme's default, so `localhost:` is fine.
    if let Some(port) = port.filter(|port| !port.is_empty()) {
        if port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p > 65_535)
        {
            return Err(InvalidHost);
        }
    }
    let name = if host.starts_with('[') {
        valid_ipv6_literal(host)?.to_ascii_lowercase()
    } else {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.len() > MAX_HOST_LEN || !host.split('.').all(valid_label) {
            return Err(InvalidHost);
        }
        host.to_ascii_lowercase()
    };
    Ok(name)
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

fn split_port(authority: &str) -> Result<(&str, Option<&str>), InvalidHost> {
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(InvalidHost)?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => rest.strip_prefix(':').map(|port| (host, Some(port))).ok_or(InvalidHost),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// `[<IPv6 address>]`, checked by the standard library's parser: no zone, no IPvFuture.
fn valid_ipv6_literal(host: &str) -> Result<&str, InvalidHost> {
    let inner = &host[1..host.len() - 1];
    match inner.parse::<std::net::Ipv6Addr>() {
        Ok(_) => Ok(host),
        Err(_) => Err(InvalidHost),
    }
}
