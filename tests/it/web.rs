//! The web skeleton over HTTP and HTTPS: start page, health, static files, error pages.

use tokio::net::TcpStream;

use crate::harness::{http_get, start, tls_client};

#[tokio::test]
async fn http_serves_health_static_and_error_pages() {
    let server = start().await;
    let http = server.running.addr("http").unwrap();

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/healthz").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, "ok\n");

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/static/style.css").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/css"), "{head}");
    assert!(body.contains(":root"));

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(head.contains("text/html"), "{head}");
    assert!(body.contains("There is nothing at this address"), "{body}");

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, _, body) = http_get(&mut s, "/static/../Cargo.toml").await;
    assert_eq!(status, 404, "{body}");

    server.running.shutdown().await;
}

#[tokio::test]
async fn https_uses_the_shared_certificate() {
    let server = start().await;
    let https = server.running.addr("https").unwrap();
    let tcp = TcpStream::connect(https).await.unwrap();
    let mut tls = tls_client(server.dir.path(), tcp).await;
    let (status, _, body) = http_get(&mut tls, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok\n");
    assert_eq!(server.running.tls.status().source, "self-signed");
    server.running.shutdown().await;
}

#[tokio::test]
async fn first_start_creates_the_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::harness::config(dir.path());
    let running = mailroom::app::start(config.clone()).await.unwrap();
    let login = running
        .first_login
        .clone()
        .expect("admin created on first start");
    assert_eq!(login.address, "admin@localhost");
    assert!(login.password.len() >= 16);
    let admin = running
        .store
        .account_by_address("admin@localhost")
        .await
        .unwrap()
        .unwrap();
    assert!(admin.is_admin);
    let ip = "127.0.0.1".parse().unwrap();
    running
        .auth
        .login("test", ip, &login.address, &login.password)
        .await
        .unwrap();
    running.shutdown().await;

    let running = mailroom::app::start(config).await.unwrap();
    assert!(running.first_login.is_none(), "not again on restart");
    running
        .auth
        .login("test", ip, &login.address, &login.password)
        .await
        .unwrap();
    running.shutdown().await;
}
