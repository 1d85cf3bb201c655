//! Remote members of the namespace: workers deployed outside this app (their own Spin app, a
//! SpinApp per tenant on SpinKube, a Fermyon Cloud app), reached over real HTTP at an origin
//! built from `worker_url_template`.

use crate::pipeline::worker_name::WorkerName;

/// The placeholder a template must contain once, in its host.
pub const PLACEHOLDER: &str = "{worker}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// `http(s)://<prefix>{worker}<suffix>[:port]`, checked: no userinfo, path, query or fragment,
/// and a host that cannot route back into the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerUrlTemplate {
    pub scheme: Scheme,
    prefix: String,
    suffix: String,
    port: Option<u16>,
}

/// Where a remote worker is reached: the scheme and the authority (`host[:port]`), which is also
/// the `Host` the worker receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    pub authority: String,
}

impl WorkerUrlTemplate {
    /// Parses and checks a template. `base_domain` and `dispatcher_hosts` are the dispatcher's
    /// own (normalised) hosts: a template whose host falls under one of them would send the
    /// request back into the dispatcher, so it is refused.
    pub fn parse(raw: &str, base_domain: &str, dispatcher_hosts: &[String]) -> Result<WorkerUrlTemplate, String> {
        let raw = raw.trim();
        let (scheme, rest) = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            _ => return Err("must start with http:// or https://".into()),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err("must be an origin: no path, query or fragment".into());
        }
        if authority.contains('@') {
            return Err("must not contain userinfo".into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains('}') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("'{port}' is not a port"))?;
                (host, Some(port))
            }
            _ => (authority, None),
        };
        let Some((prefix, suffix)) = host.split_once(PLACEHOLDER) else {
            return Err(format!("the host must contain {PLACEHOLDER}"));
        };
        if suffix.contains(PLACEHOLDER) || prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
            return Err(format!("{PLACEHOLDER} may appear once, and nothing else in braces"));
        }
        let template = WorkerUrlTemplate {
            scheme,
            prefix: prefix.to_ascii_lowercase(),
            suffix: suffix.to_ascii_lowercase(),
            port,
        };
        // Checked on a sample name: every valid worker name gives a host of the same shape.
        let sample = template.host_for("w0");
        if crate::hostname::normalise_name(&sample).is_err() {
            return Err(format!("'{sample}' is not a host name"));
        }
        if !sample.contains('.') {
            return Err("the host must have a domain: a single label would be looked up locally".into());
        }
        for own in std::iter::once(base_domain).chain(dispatcher_hosts.iter().map(String::as_str)) {
            if sample == own || sample.ends_with(&format!(".{own}")) {
                return Err(format!(
                    "the host falls under the dispatcher's own host '{own}', so requests would loop back"
                ));
            }
        }
        Ok(template)
    }

    /// The host with `{worker}` in it, lowercase.
    pub fn host_pattern(&self) -> String {
        self.host_for(PLACEHOLDER)
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    fn host_for(&self, worker: &str) -> String {
        [self.prefix.as_str(), worker, self.suffix.as_str()].concat()
    }

    /// The origin of `worker`.
    pub fn origin(&self, worker: &WorkerName) -> Origin {
        let mut authority = self.host_for(worker.as_str());
        if let Some(port) = self.port {
            authority.push(':');
            authority.push_str(&port.to_string());
        }
        Origin {
            scheme: self.scheme,
            authority,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<WorkerUrlTemplate, String> {
        WorkerUrlTemplate::parse(raw, "libra.sh", &["dispatcher.libra.dev".to_string()])
    }

    fn origin(raw: &str, worker: &str) -> Origin {
        parse(raw).unwrap().origin(&WorkerName::parse(worker, &[]).unwrap())
    }

    #[test]
    fn renders_the_worker_into_the_host() {
        assert_eq!(
            origin("http://{worker}.libra-workers.svc.cluster.local", "my-app"),
            Origin {
                scheme: Scheme::Http,
                authority: "my-app.libra-workers.svc.cluster.local".into()
            }
        );
        assert_eq!(
            origin("https://libra-{worker}.fermyon.app/", "shop"),
            Origin {
                scheme: Scheme::Https,
                authority: "libra-shop.fermyon.app".into()
            }
        );
        assert_eq!(
            origin("HTTP://{worker}.Workers.Test:8081", "a").authority,
            "a.workers.test:8081"
        );
    }

    #[test]
    fn refuses_templates_that_are_not_a_worker_origin() {
        for bad in [
            "",
            "ftp://{worker}.example.com",
            "{worker}.example.com",
            "http://example.com",
            "http://{worker}.example.com/path",
            "http://{worker}.example.com?x=1",
            "http://{worker}.example.com#x",
            "http://user@{worker}.example.com",
            "http://{worker}.{worker}.example.com",
            "http://{name}.example.com",
            "http://example.com:{worker}",
            "http://{worker}.example.com:http",
            "http://{worker}.example.com:0",
            "http://{worker}.example.com:70000",
            "http://{worker}",
            "http://{worker}_x.example.com",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_hosts_that_route_back_into_the_dispatcher() {
        for looping in [
            "http://{worker}.libra.sh",
            "https://{worker}.internal.libra.sh",
            "http://{worker}.dispatcher.libra.dev",
            "http://{worker}.LIBRA.SH:8080",
        ] {
            let error = parse(looping).unwrap_err();
            assert!(error.contains("loop"), "{looping}: {error}");
        }
        assert!(parse("http://{worker}.notlibra.sh").is_ok());
    }
}
