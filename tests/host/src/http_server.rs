//! Serves an app on a TCP port, as `spin up` does, for tests that need a real HTTP client (a
//! browser, schemathesis). Each request goes through [`App::handle`] with the peer's address, so
//! the semantics are exactly those of the in-process tests.

use std::net::SocketAddr;

use anyhow::Result;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::App;

/// A running server; dropping it stops accepting connections.
pub struct HttpServer {
    pub addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl HttpServer {
    /// A server already accepting on `addr`; dropping it stops the loop.
    pub fn from_parts(addr: SocketAddr, accept_loop: JoinHandle<()>) -> HttpServer {
        HttpServer { addr, accept_loop }
    }

    /// `http://<addr>`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Binds `addr` (port 0 picks a free one) and serves `app` until the server is dropped. The
/// listener is bound before this returns, so clients may connect at once.
pub async fn serve_http(app: App, addr: SocketAddr) -> Result<HttpServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let accept_loop = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("test host: accept failed: {error}");
                    continue;
                }
            };
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        let request = request.map(|body| body.map_err(wasmtime_wasi_http::p2::hyper_request_error));
                        app.handle(request, peer).await
                    }
                });
                // As Spin serves (`trigger-http/src/server.rs`): HTTP/1 and h2c, hyper's defaults.
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                if let Err(error) = connection.await {
                    eprintln!("test host: connection from {peer}: {error}");
                }
            });
        }
    });
    Ok(HttpServer { addr, accept_loop })
}
