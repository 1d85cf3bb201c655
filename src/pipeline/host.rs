//! Phase 1, classify: which kind of host the request is for.

use crate::config::Config;
use crate::error::DispatchError;
use crate::hostname;
use crate::pipeline::worker_name::WorkerName;

/// A host as routing sees it: lowercase, no port, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// The `Host` header as the client sent it (validated), port included: what
    /// `X-Forwarded-Host` passes on, so a worker can build its own absolute URLs.
    pub authority: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostClass {
    /// The apex base domain or one of `dispatcher_hosts`: serves the dispatcher's API only.
    Dispatcher,
    /// `<worker>.<base_domain>`.
    Tenant(WorkerName),
    /// Anything else: a tenant's own domain, looked up in the database.
    CustomDomain,
}

/// Validates and normalises a `Host` header value (RFC 9110 `uri-host [ ":" port ]`).
pub fn normalise(raw: &[u8]) -> Result<Host, DispatchError> {
    let authority = std::str::from_utf8(raw).map_err(|_| DispatchError::InvalidHost)?;
    Ok(Host {
        name: hostname::normalise_name(authority).map_err(|_| DispatchError::InvalidHost)?,
        authority: authority.to_string(),
    })
}

/// Decides the class of a normalised host; a tenant subdomain's label must be a valid name.
pub fn classify(host: &Host, config: &Config) -> Result<HostClass, DispatchError> {
    if config.is_dispatcher_host(&host.name) {
        return Ok(HostClass::Dispatcher);
    }
    let Some(label) = host
        .name
        .strip_suffix(config.base_domain.as_str())
        .and_then(|rest| rest.strip_suffix('.'))
    else {
        // Only a name that could be a tenant's registered domain is looked up: any other host
        // would cost a database query (and a cache entry) per request for nothing.
        return if hostname::is_plausible_domain(&host.name) {
            Ok(HostClass::CustomDomain)
        } else {
            Err(DispatchError::CustomDomainNotFound)
        };
    };
    if label.contains('.') {
        // `a.b.libra.sh` is not guessed at: the original took the first label, so one
        // worker answered for any name under it.
        return Err(DispatchError::HostNotRouted);
    }
    WorkerName::parse(label, &config.reserved_names)
        .map(HostClass::Tenant)
        .map_err(DispatchError::InvalidWorkerName)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::worker_name::NameError;

    fn config() -> Config {
        Config::from_lookup(|name| match name {
            "base_domain" => Some("libra.sh".into()),
            "dispatcher_hosts" => Some("dispatcher.libra.dev,localhost".into()),
            "reserved_names" => Some("billing".into()),
            _ => None,
        })
        .unwrap()
    }

    fn class(raw: &str) -> Result<HostClass, DispatchError> {
        classify(&normalise(raw.as_bytes())?, &config())
    }

    fn tenant(name: &str) -> HostClass {
        HostClass::Tenant(WorkerName::parse(name, &[]).unwrap())
    }

    #[test]
    fn normalises_case_port_and_one_trailing_dot() {
        let host = normalise(b"My-App.Libra.SH.:8443").unwrap();
        assert_eq!(host.name, "my-app.libra.sh");
        assert_eq!(host.authority, "My-App.Libra.SH.:8443");
        assert_eq!(normalise(b"[::1]:3000").unwrap().name, "[::1]");
        assert_eq!(normalise(b"127.0.0.1:3000").unwrap().name, "127.0.0.1");
        assert_eq!(normalise(b"localhost:").unwrap().name, "localhost");
        assert_eq!(normalise(b"[::ffff:1.2.3.4]:80").unwrap().name, "[::ffff:1.2.3.4]");
        assert_eq!(normalise(b"[2001:DB8::1]").unwrap().name, "[2001:db8::1]");
    }

    #[test]
    fn rejects_malformed_hosts() {
        let long = format!("{}.com", "a.".repeat(130));
        for bad in [
            "",
            ":80",
            "a..b",
            "a.b..",
            "-a.com",
            "a-.com",
            "a_b.com",
            "exämple.com",
            "a b",
            "a.com:http",
            "a.com:70000",
            "a.com:80:80",
            "[::1",
            "[zz]",
            "[::1]x",
            "[1:2:3]",
            "[:::1]",
            "[::1%25eth0]",
            "[fe80::1%eth0]",
            "[v1.x]",
            "[::ffff:1.2.3]",
            "[12345::1]",
            "a/b",
            "a@b",
            &long,
        ] {
            assert_eq!(normalise(bad.as_bytes()), Err(DispatchError::InvalidHost), "{bad:?}");
        }
        assert_eq!(normalise(&[0xff, 0xfe]), Err(DispatchError::InvalidHost));
    }

    #[test]
    fn classifies_dispatcher_tenant_and_custom_hosts() {
        assert_eq!(class("libra.sh"), Ok(HostClass::Dispatcher));
        assert_eq!(class("LIBRA.SH."), Ok(HostClass::Dispatcher));
        assert_eq!(class("dispatcher.libra.dev:443"), Ok(HostClass::Dispatcher));
        assert_eq!(class("my-app.libra.sh"), Ok(tenant("my-app")));
        assert_eq!(class("My-App.Libra.Sh."), Ok(tenant("my-app")));
        assert_eq!(class("shop.example.com"), Ok(HostClass::CustomDomain));
        // A look-alike suffix is not a subdomain.
        assert_eq!(class("evil-libra.sh"), Ok(HostClass::CustomDomain));
        assert_eq!(class("libra.sh.evil.com"), Ok(HostClass::CustomDomain));
    }

    #[test]
    fn only_plausible_domains_are_looked_up() {
        for looked_up in ["shop.example.com", "a.b.co", "xn--bcher-kva.example", "my-shop.io"] {
            assert_eq!(class(looked_up), Ok(HostClass::CustomDomain), "{looked_up}");
        }
        for refused in ["10.0.0.1", "10.1", "[::1]", "intranet", "example.123", "1.2.3.4:8080"] {
            assert_eq!(class(refused), Err(DispatchError::CustomDomainNotFound), "{refused}");
        }
    }

    #[test]
    fn refuses_deeper_and_reserved_subdomains() {
        assert_eq!(class("a.b.libra.sh"), Err(DispatchError::HostNotRouted));
        assert_eq!(
            class("www.libra.sh"),
            Err(DispatchError::InvalidWorkerName(NameError::Reserved))
        );
        assert_eq!(
            class("billing.libra.sh"),
            Err(DispatchError::InvalidWorkerName(NameError::Reserved))
        );
        assert_eq!(
            class(&format!("{}.libra.sh", "a".repeat(64))),
            Err(DispatchError::InvalidHost)
        );
    }
}
