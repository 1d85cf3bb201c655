//! The request as every phase sees it: its head, its id and the configuration it is served with.

use crate::config::Config;

/// Header names and values in the order they arrived.
pub type Headers = Vec<(String, Vec<u8>)>;

#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// The request's authority as Spin gives it (taken from `Host`). Newer wasmtime releases
    /// hide `Host` itself from guests, so this is the primary source.
    pub authority: Option<String>,
    pub path_and_query: String,
    pub headers: Headers,
}

/// What every phase may need to know about the request being served.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub head: &'a RequestHead,
    pub request_id: &'a str,
    pub config: &'a Config,
}
