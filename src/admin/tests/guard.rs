//! The guard over real HTTP: cross-site POSTs are refused, a browser's
//! POST needs the page's token, plain clients need none, `[admin] token`
//! is required everywhere but the page's files, and a loopback endpoint
//! answers only loopback `Host`s.

use super::*;

/// The token the page at `/` carries.
async fn page_token(f: &Fixture) -> String {
    let page = f.get("/").await;
    assert_eq!(page.status, 200, "{page:?}");
    let (_, rest) = page
        .body
        .split_once(r#"<meta name="databay-token" content=""#)
        .expect("a token meta tag");
    let token = rest.split('"').next().expect("closing quote").to_owned();
    assert_eq!(token.len(), 32, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    token
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_changes_nothing() {
    let f = Fixture::start().await;
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![
            ("Origin", "http://x.evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
    ] {
        for path in [
            "/links/alpha/pause",
            "/links/alpha/transfer",
            "/all/pause",
            "/all/transfer",
        ] {
            let reply = f.send("POST", path, &headers).await;
            assert_eq!(reply.status, 403, "{path} {headers:?}: {reply:?}");
            assert!(
                reply.json()["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("refused"),
                "{reply:?}"
            );
        }
    }
    // Even with the right token, another origin is refused.
    let token = page_token(&f).await;
    let reply = f
        .send(
            "POST",
            "/links/alpha/pause",
            &[
                ("Origin", "http://evil.example"),
                ("X-Databay-Token", &token),
            ],
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let alpha = f.link("alpha");
    assert!(!alpha.is_paused());
    assert_eq!(alpha.stats().transfers_ok, 0);
    f.stop().await;
}

#[tokio::test]
async fn a_browser_post_needs_the_page_token_and_curl_does_not() {
    let f = Fixture::start().await;
    let same_origin = [("Origin", "http://x"), ("Sec-Fetch-Site", "same-origin")];
    let refused = f.send("POST", "/links/alpha/pause", &same_origin).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("x-databay-token"), "{refused:?}");
    let wrong = f
        .send(
            "POST",
            "/links/alpha/pause",
            &[
                ("Origin", "http://x"),
                ("X-Databay-Token", "0123456789abcdef0123456789abcdef"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403, "{wrong:?}");
    assert!(!f.link("alpha").is_paused());

    let token = page_token(&f).await;
    let ok = f
        .send(
            "POST",
            "/links/alpha/pause",
            &[same_origin[0], same_origin[1], ("X-Databay-Token", &token)],
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(f.link("alpha").is_paused());

    // No Origin, no Sec-Fetch-*: a script, as before the guard.
    assert_eq!(f.post("/links/alpha/resume").await.status, 200);
    assert!(!f.link("alpha").is_paused());
    // Reads are not guarded against other origins (no CORS: they cannot read them).
    let read = f
        .send("GET", "/links", &[("Origin", "http://evil.example")])
        .await;
    assert_eq!(read.status, 200, "{read:?}");
    f.stop().await;
}

#[tokio::test]
async fn each_process_hands_out_its_own_token() {
    let (a, b) = (Fixture::start().await, Fixture::start().await);
    let (ta, tb) = (page_token(&a).await, page_token(&b).await);
    assert_ne!(ta, tb);
    let reply = a
        .send(
            "POST",
            "/links/alpha/pause",
            &[("Origin", "http://x"), ("X-Databay-Token", &tb)],
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    a.stop().await;
    b.stop().await;
}

fn with_token(s: AdminState) -> AdminState {
    s.with_token(Some(Secret::new("s3cret-admin".to_owned())))
}

#[tokio::test]
async fn the_admin_token_is_required_for_reads_and_writes() {
    let f = Fixture::start_configured(Limits::default(), with_token).await;
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/links"),
        ("GET", "/ui/links"),
        ("GET", "/links/alpha"),
        ("POST", "/links/alpha/pause"),
        ("POST", "/all/pause"),
        ("GET", "/nowhere"),
    ] {
        let none = f.send(method, path, &[]).await;
        assert_eq!(none.status, 401, "{method} {path}: {none:?}");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        assert!(!none.body.contains("s3cret"), "{none:?}");
        let wrong = f
            .send(method, path, &[("Authorization", "Bearer s3cret-admim")])
            .await;
        assert_eq!(wrong.status, 401, "{method} {path}: {wrong:?}");
    }
    assert!(!f.link("alpha").is_paused());
    let auth = [("Authorization", "Bearer s3cret-admin")];
    assert_eq!(f.send("GET", "/links", &auth).await.status, 200);
    assert_eq!(
        f.send("POST", "/links/alpha/pause", &auth).await.status,
        200
    );
    assert!(f.link("alpha").is_paused());
    // The page's files hold no data; the page asks for the token.
    for path in ["/", "/ui/status.js", "/ui/status.css"] {
        assert_eq!(f.get(path).await.status, 200, "{path}");
    }
    // The bearer does not lift the cross-site check.
    let cross = f
        .send(
            "POST",
            "/links/alpha/resume",
            &[auth[0], ("Origin", "http://evil.example")],
        )
        .await;
    assert_eq!(cross.status, 403, "{cross:?}");
    f.stop().await;
}

fn loopback(s: AdminState) -> AdminState {
    s.loopback_hosts_only(true)
}

#[tokio::test]
async fn a_loopback_endpoint_answers_only_loopback_hosts() {
    let f = Fixture::start_configured(Limits::default(), loopback).await;
    for host in [
        "127.0.0.1:9477",
        "localhost:9477",
        "[::1]:9477",
        "LOCALHOST",
        "app.localhost:1",
    ] {
        let reply = f.send("GET", "/healthz", &[("Host", host)]).await;
        assert_eq!(reply.status, 200, "{host}: {reply:?}");
    }
    for host in [
        "evil.example:9477",
        "x",
        "127.0.0.1.evil.example",
        "10.0.0.1:9477",
    ] {
        let reply = f.send("GET", "/", &[("Host", host)]).await;
        assert_eq!(reply.status, 403, "{host}: {reply:?}");
        assert!(reply.body.contains("DNS rebinding"), "{reply:?}");
        assert!(!reply.body.contains("databay-token"), "{reply:?}");
    }
    f.stop().await;
}
