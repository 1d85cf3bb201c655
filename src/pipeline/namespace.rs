//! Phase 4, locate: where the worker a request names lives. Every kind of namespace member is a
//! resolver behind this one phase; the phases before and after do not know which one answered.
//!
//! - Local: a component of this app, listed in `workers`, reached over Spin's service chaining.
//! - Remote: a worker deployed elsewhere, reached over HTTP at `worker_url_template`, when the
//!   namespace's source (the `remote_workers` list, or Libra's database) says it is deployed.
//!
//! A name is local first. Unknown names are `404 worker_not_found` without any outbound call.

use crate::config::{Config, Remote, RemoteMembers};
use crate::error::DispatchError;
use crate::pipeline::directory::Directory;
use crate::pipeline::request::Context;
use crate::pipeline::route::RouteKind;
use crate::pipeline::worker_name::WorkerName;
use crate::pipeline::world::World;
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

/// Names the worker (`named`, or for a custom domain the one the directory gives for `host`) and
/// finds where it lives: local first, then remote, where the namespace has remote members.
pub fn locate(
    ctx: Context,
    directory: &mut Directory,
    world: &mut impl World,
    host: &str,
    named: Option<&WorkerName>,
    kind: RouteKind,
) -> Result<(WorkerName, Location), DispatchError> {
    let worker = match named {
        Some(worker) => worker.clone(),
        None => directory
            .custom_domain(world, host)?
            .ok_or(DispatchError::CustomDomainNotFound)?,
    };
    if is_local(&worker, kind, ctx.config) {
        return Ok((worker, Location::Local));
    }
    let remote = ctx.config.remote().map_err(DispatchError::Configuration)?;
    let location = match locate_remote(&worker, remote.as_ref())? {
        Located::Here(location) => location,
        Located::AskDatabase(origin) => {
            if !directory.is_deployed(world, &worker)? {
                return Err(DispatchError::WorkerNotFound(worker.to_string()));
            }
            Location::Remote(origin)
        }
    };
    Ok((worker, location))
}

/// The first resolver: a component of this app (or the docs component, which is part of the app,
/// not of the tenants' namespace).
pub fn is_local(worker: &WorkerName, kind: RouteKind, config: &Config) -> bool {
    kind == RouteKind::Docs || config.has_worker(worker)
}

/// The second resolver, for a name that is not local: a remote worker, if the namespace has any.
pub fn locate_remote(worker: &WorkerName, remote: Option<&Remote>) -> Result<Located, DispatchError> {
    let Some(remote) = remote else {
        return Err(DispatchError::WorkerNotFound(worker.to_string()));
    };
    let origin = remote.template.origin(worker);
    match &remote.members {
        RemoteMembers::Listed(list) if worker.is_listed_in(list) => Ok(Located::Here(Location::Remote(origin))),
        RemoteMembers::Listed(_) => Err(DispatchError::WorkerNotFound(worker.to_string())),
        RemoteMembers::Database => Ok(Located::AskDatabase(origin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LookupConfig;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(lookup(pairs)).unwrap()
    }

    fn lookups(pairs: &[(&str, &str)]) -> LookupConfig {
        config(pairs).lookups().unwrap()
    }

    fn name(name: &str) -> WorkerName {
        WorkerName::parse(name, &[]).unwrap()
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
        assert!(is_local(&name("hello"), RouteKind::Subdomain, &config));
        assert!(!is_local(&name("ghost"), RouteKind::Subdomain, &config));
        assert!(is_local(&WorkerName::docs_component(), RouteKind::Docs, &config));
        assert_eq!(
            locate_remote(&name("ghost"), lookups(&[]).remote.unwrap().as_ref()),
            Err(DispatchError::WorkerNotFound("ghost".into()))
        );
    }

    #[test]
    fn remote_names_come_from_the_list_or_the_database() {
        let listed = lookups(&[
            ("worker_url_template", "http://{worker}.workers.test:8081"),
            ("remote_workers", "shop,hello"),
        ]);
        assert_eq!(
            locate_remote(&name("shop"), listed.remote.as_ref().unwrap().as_ref()),
            Ok(Located::Here(Location::Remote(remote("shop.workers.test:8081"))))
        );
        assert_eq!(
            locate_remote(&name("ghost"), listed.remote.as_ref().unwrap().as_ref()),
            Err(DispatchError::WorkerNotFound("ghost".into()))
        );
        let from_database = lookups(&[("worker_url_template", "http://{worker}.workers.test")]);
        assert_eq!(
            locate_remote(&name("shop"), from_database.remote.unwrap().as_ref()),
            Ok(Located::AskDatabase(remote("shop.workers.test")))
        );
    }

    #[test]
    fn a_bad_template_fails_remote_names_only() {
        let bad = lookups(&[("worker_url_template", "ftp://{worker}.x.test")]);
        assert_eq!(bad.remote.unwrap_err().variable, "worker_url_template");
    }
}
