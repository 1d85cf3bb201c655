//! Phase 4, locate: where the worker a request names lives. Every kind of namespace member is a
//! resolver behind this one phase; the phases before and after do not know which one answered.
//!
//! - Local: a component of this app, listed in `workers`, reached over Spin's service chaining.
//! - Remote: a worker deployed elsewhere, reached over HTTP at `worker_url_template`, when the
//!   namespace's source (the `remote_workers` list, or Libra's database) says it is deployed.
//!
//! A name is local first. Unknown names are `404 worker_not_found` without any outbound call.

use crate::config::{Config, RemoteMembers};
use crate::error::DispatchError;
use crate::pipeline::route::RouteKind;
use crate::pipeline::worker_name::WorkerName;
use crate::remote::Origin;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `http://<worker>.spin.internal`.
    Local,
    Remote(Origin),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Decided from the configuration alone.
    Here(Location),
    /// A remote candidate: the database must say whether it is deployed (the glue asks it,
    /// through the cache). If it is, it is reached at this origin.
    AskDatabase(Origin),
}

pub fn locate(worker: &WorkerName, kind: RouteKind, config: &Config) -> Result<Located, DispatchError> {
    // The docs component is part of the app, not of the tenants' namespace.
    if kind == RouteKind::Docs || config.has_worker(worker) {
        return Ok(Located::Here(Location::Local));
    }
    let remote = match &config.remote {
        Ok(Some(remote)) => remote,
        Ok(None) => return Err(DispatchError::WorkerNotFound(worker.to_string())),
        Err(_) => return Err(DispatchError::Configuration),
    };
    let origin = remote.template.origin(worker);
    match &remote.members {
        RemoteMembers::Listed(list) if crate::membership::listed(list, worker) => {
            Ok(Located::Here(Location::Remote(origin)))
        }
        RemoteMembers::Listed(_) => Err(DispatchError::WorkerNotFound(worker.to_string())),
        RemoteMembers::Database => Ok(Located::AskDatabase(origin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).unwrap()
    }

    fn locate_name(name: &str, config: &Config) -> Result<Located, DispatchError> {
        locate(&WorkerName::parse(name, &[]).unwrap(), RouteKind::Subdomain, config)
    }

    fn remote(authority: &str) -> Origin {
        Origin {
            scheme: crate::remote::Scheme::Http,
            authority: authority.into(),
        }
    }

    #[test]
    fn local_first_then_nothing_without_a_template() {
        let config = config(&[("workers", "hello")]);
        assert_eq!(locate_name("hello", &config), Ok(Located::Here(Location::Local)));
        assert_eq!(
            locate_name("ghost", &config),
            Err(DispatchError::WorkerNotFound("ghost".into()))
        );
    }

    #[test]
    fn remote_names_come_from_the_list_or_the_database() {
        let listed = config(&[
            ("workers", "hello"),
            ("worker_url_template", "http://{worker}.workers.test:8081"),
            ("remote_workers", "shop,hello"),
        ]);
        assert_eq!(locate_name("hello", &listed), Ok(Located::Here(Location::Local)));
        assert_eq!(
            locate_name("shop", &listed),
            Ok(Located::Here(Location::Remote(remote("shop.workers.test:8081"))))
        );
        assert_eq!(
            locate_name("ghost", &listed),
            Err(DispatchError::WorkerNotFound("ghost".into()))
        );
        let from_database = config(&[("worker_url_template", "http://{worker}.workers.test")]);
        assert_eq!(
            locate_name("shop", &from_database),
            Ok(Located::AskDatabase(remote("shop.workers.test")))
        );
    }

    #[test]
    fn a_bad_template_fails_remote_names_only() {
        let config = config(&[("workers", "hello"), ("worker_url_template", "ftp://{worker}.x.test")]);
        assert_eq!(locate_name("hello", &config), Ok(Located::Here(Location::Local)));
        assert_eq!(locate_name("shop", &config), Err(DispatchError::Configuration));
    }
}
