//! A benchmark baseline written the way most tenants would write a forwarder: spin-sdk's
//! `#[http_component]`, its async executor and its HTTP client (`spin_sdk::http::send`), which
//! buffers each body whole. It chains every request to the `hello` worker, as the other
//! forwarders do, so the benchmark can show what the SDK's conveniences cost on Spin.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn forward(request: Request) -> anyhow::Result<impl IntoResponse> {
    let target = format!("http://hello.spin.internal{}", request.path_and_query().unwrap_or("/"));
    let mut outbound = Request::builder();
    outbound.method(request.method().clone()).uri(target);
    for (name, value) in request.headers() {
        if name != "host" {
            outbound.header(name, value.as_str().unwrap_or_default());
        }
    }
    let response: Response = spin_sdk::http::send(outbound.body(request.into_body()).build()).await?;
    Ok(response)
}
