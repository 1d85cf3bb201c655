use libra_test_host::{App, AppOptions};
use http_body_util::{BodyExt, Full};
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let app = App::new(AppOptions::default()).unwrap();
    for (host, path) in [("hello.localhost:3000", "/"), ("localhost:3000", "/health"), ("echo.localhost", "/x?y=1"), ("localhost", "/dispatch/echo/a?b"), ("ghost.localhost", "/")] {
        let req = http::Request::builder().uri(path).header("host", host).body(Full::new(Bytes::from_static(b"hi"))).unwrap();
        let resp = app.handle(req, "127.0.0.1:5555".parse().unwrap()).await;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        println!("{host}{path} -> {} {:?}\n{}\n", parts.status, parts.headers, String::from_utf8_lossy(&body));
    }
    println!("LOG:\n{}", app.stdout("dispatcher"));
}
