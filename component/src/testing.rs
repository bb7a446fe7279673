//! Checks for component crates' tests: a registered type's `sample.toml`
//! parses, names its own type, builds through its factory, shows every
//! option its options struct declares, and is quoted whole in its
//! `README.md`, which names every option too. One call per component
//! keeps the sample, the README and the code from drifting apart. And a
//! [`TcpProxy`] on loopback, to take a shared test server away from one
//! connector and bring it back without stopping it; a [`SilentServer`]
//! for timeouts; a [`GarbageServer`] for a server that speaks another
//! protocol; and an [`OwnedServer`], a server process of one test's
//! own for what a shared server cannot show (a refused login).
//!
//! ```
//! use databay_component::{BuildContext, Kind, Registry};
//! use databay_core::testing::StaticInlet;
//!
//! /// Options of `numbers`.
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Options {
//!     /// How many values to produce.
//!     count: u32,
//! }
//!
//! const SAMPLE: &str = "# Produces 0..count.\ntype = \"numbers\"\n# How many.\ncount = 3\n";
//! const README: &str = "# numbers\n\n`count`: how many.\n\n```toml\n# Produces 0..count.\ntype = \"numbers\"\n# How many.\ncount = 3\n```\n";
//!
//! let mut registry = Registry::new();
//! registry.inlet("numbers", "Produces 0..count.", SAMPLE, |o: Options, _: &BuildContext| {
//!     Ok(StaticInlet::values((0..o.count).map(serde_json::Value::from)))
//! });
//! databay_component::testing::assert_documented(&registry, Kind::Inlet, "numbers", README);
//! ```

use crate::{BuildContext, BuildError, Kind, RawOptions, Registry};

/// Panics, saying what is wrong, unless the `kind` type `name` in
/// `registry` passes every check of [`check_documented`].
pub fn assert_documented(registry: &Registry, kind: Kind, name: &str, readme: &str) {
    if let Err(problems) = check_documented(registry, kind, name, readme) {
        panic!(
            "{kind} `{name}` is not documented as it is built:\n- {}",
            problems.join("\n- ")
        );
    }
}

/// [`assert_documented`] for a type that `register` (a component crate's
/// or folder's `register` function) registers, with its README:
/// `assert_registered_documented(register, Kind::Inlet, "file", include_str!("README.md"))`.
pub fn assert_registered_documented(
    register: fn(&mut Registry),
    kind: Kind,
    name: &str,
    readme: &str,
) {
    let mut registry = Registry::new();
    register(&mut registry);
    assert_documented(&registry, kind, name, readme);
}

/// Every problem with how the `kind` type `name` is documented: its
/// summary is one line; its sample starts with a comment, parses, has
/// `type = "name"`, builds, and has a line for every option (set, or
/// commented out as `# option = ...`); its README quotes the sample whole
/// and names every option in backticks.
pub fn check_documented(
    registry: &Registry,
    kind: Kind,
    name: &str,
    readme: &str,
) -> Result<(), Vec<String>> {
    let Some(info) = registry.info(kind, name) else {
        return Err(vec![format!("no {kind} type `{name}` is registered")]);
    };
    let mut problems = Vec::new();
    if info.summary.trim().is_empty() || info.summary.contains('\n') {
        problems.push(format!("the summary must be one line: {:?}", info.summary));
    }
    let sample = &info.sample;
    if !sample.starts_with("# ") {
        problems.push("the sample must start with a `# ` comment saying what it is".into());
    }
    match build_sample(registry, kind, name, sample) {
        Ok(()) => {}
        Err(e) => problems.push(e),
    }
    if !readme.contains(sample.trim_end()) {
        problems
            .push("the README must quote the sample whole (a ```toml block of sample.toml)".into());
    }
    for option in info.options.unwrap_or_default() {
        if !sample_mentions(sample, option) {
            problems.push(format!(
                "the sample has no line for option `{option}` (write `{option} = ...`, or `# {option} = ...` when it has no default)"
            ));
        }
        if !readme.contains(&format!("`{option}`")) {
            problems.push(format!("the README does not name option `{option}`"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn sample_mentions(sample: &str, option: &str) -> bool {
    sample.lines().any(|line| {
        let line = line.trim_start().trim_start_matches('#').trim_start();
        line.strip_prefix(option)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
            || line.starts_with(&format!("[{option}]"))
            || line.starts_with(&format!("[[{option}]]"))
    })
}

fn build_sample(registry: &Registry, kind: Kind, name: &str, sample: &str) -> Result<(), String> {
    let mut table = toml::de::DeTable::parse(sample)
        .map_err(|e| format!("the sample is not valid TOML: {e}"))?;
    let span = table.span();
    let options = table.get_mut();
    match options.remove("type").map(|t| t.into_inner()) {
        Some(toml::de::DeValue::String(t)) if t == name => {}
        Some(other) => {
            return Err(format!(
                "the sample's `type` must be \"{name}\", found {other:?}"
            ));
        }
        None => return Err(format!("the sample has no `type = \"{name}\"`")),
    }
    for common in kind.common_options() {
        options.remove(*common);
    }
    let raw: RawOptions<'_> =
        toml::Spanned::new(span, toml::de::DeValue::Table(table.into_inner()));
    let cx = context();
    let built = match kind {
        Kind::Inlet => registry
            .inlet_type(name)
            .map(|c| c.build(raw, &cx).map(drop)),
        Kind::Outlet => registry
            .outlet_type(name)
            .map(|c| c.build(raw, &cx).map(drop)),
        Kind::Processor => registry
            .processor_type(name)
            .map(|c| c.build(raw, &cx).map(drop)),
        Kind::Grouper => registry
            .grouper_type(name)
            .map(|c| c.build(raw, &cx).map(drop)),
    };
    match built {
        None => Err(format!("no {kind} type `{name}` is registered")),
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("the sample does not build: {e}")),
    }
}

/// A build context for tests: link `test`, paths relative to the current
/// directory.
pub fn context() -> BuildContext {
    BuildContext::new("test", ".")
}

/// Parses `options` (a TOML table's body, without `type`) as the config
/// hands them to a factory.
///
/// # Panics
/// When `options` is not valid TOML: a mistake in the test itself.
pub fn raw_options(options: &str) -> RawOptions<'_> {
    let table = toml::de::DeTable::parse(options)
        .unwrap_or_else(|e| panic!("the test's options are not TOML: {e}"));
    let span = table.span();
    toml::Spanned::new(span, toml::de::DeValue::Table(table.into_inner()))
}

/// Builds `component` (as `registry.processor_type("select")` gives it)
/// from `options` (TOML, without `type`); the factory's refusal as text.
pub fn build<T>(component: Option<&crate::Component<T>>, options: &str) -> Result<T, String> {
    let component = component.ok_or_else(|| "no such type is registered".to_owned())?;
    component
        .build(raw_options(options), &context())
        .map_err(|e: BuildError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use databay_core::testing::StaticInlet;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Options {
        count: u32,
        label: Option<String>,
    }

    fn registry(sample: &str) -> Registry {
        let mut registry = Registry::new();
        registry.inlet(
            "numbers",
            "Numbers.",
            sample,
            |_: Options, _: &BuildContext| Ok(StaticInlet::values([serde_json::json!(1)])),
        );
        registry
    }

    const SAMPLE: &str = "# Numbers.\ntype = \"numbers\"\ncount = 3\n# label = \"n\"\n";

    #[test]
    fn a_documented_component_passes() {
        let readme = format!("`count` and `label`\n\n```toml\n{SAMPLE}```\n");
        assert_eq!(
            check_documented(&registry(SAMPLE), Kind::Inlet, "numbers", &readme),
            Ok(())
        );
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let problems = |sample: &str, readme: &str| {
            check_documented(&registry(sample), Kind::Inlet, "numbers", readme).unwrap_err()
        };
        // The README misses the sample and an option.
        let p = problems(SAMPLE, "`count`");
        assert!(p.iter().any(|p| p.contains("quote the sample")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("option `label`")), "{p:?}");
        // The sample names another type, lacks an option, does not build.
        let sample = "# Numbers.\ntype = \"number\"\ncount = \"three\"\n";
        let p = problems(sample, sample);
        assert!(p.iter().any(|p| p.contains("must be \"numbers\"")), "{p:?}");
        let sample = "# Numbers.\ntype = \"numbers\"\ncount = \"three\"\n";
        let p = problems(sample, &format!("`count` `label` {sample}"));
        assert!(p.iter().any(|p| p.contains("does not build")), "{p:?}");
        assert!(
            p.iter().any(|p| p.contains("no line for option `label`")),
            "{p:?}"
        );
        // No such type.
        let p = check_documented(&registry(SAMPLE), Kind::Outlet, "numbers", "").unwrap_err();
        assert!(p[0].contains("no outlet type `numbers`"), "{p:?}");
    }

    /// A cut port stays bound: no other socket can take it meanwhile, so
    /// the restore cannot find it taken.
    #[tokio::test]
    async fn a_cut_proxy_keeps_its_port_from_other_sockets() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = TcpProxy::start(upstream.local_addr().unwrap())
            .await
            .unwrap();
        proxy.cut().await;
        assert!(
            tokio::net::TcpStream::connect(proxy.addr()).await.is_err(),
            "refused while cut"
        );
        let other = tokio::net::TcpSocket::new_v4().unwrap();
        assert!(other.bind(proxy.addr()).is_err(), "the port is still held");
        drop(other);
        proxy.restore().await.unwrap();
        assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_ok());
        proxy.cut().await;
        proxy.restore().await.unwrap();
        assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_ok());
    }
}

/// A TCP proxy on 127.0.0.1 in front of a real server, for tests of a
/// connector whose server goes away and comes back: [`cut`](Self::cut)
/// closes every connection through it and refuses new ones (the port is
/// closed, as when the server is down), [`restore`](Self::restore) listens
/// again on the same port. While cut, the port stays bound (not
/// listening), so that no other socket takes it meanwhile (an outgoing
/// connection's ephemeral port, or a client connecting to itself) and
/// the restore cannot fail. The server itself, shared with other tests,
/// is never touched. Dropping the proxy closes everything.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use databay_component::testing::TcpProxy;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// // An echo server stands for the real one.
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let upstream = server.local_addr().unwrap();
/// tokio::spawn(async move {
///     while let Ok((mut s, _)) = server.accept().await {
///         tokio::spawn(async move {
///             let (mut r, mut w) = s.split();
///             let _ = tokio::io::copy(&mut r, &mut w).await;
///         });
///     }
/// });
/// let proxy = TcpProxy::start(upstream).await.unwrap();
/// let mut c = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
/// c.write_all(b"hi").await.unwrap();
/// let mut got = [0; 2];
/// c.read_exact(&mut got).await.unwrap();
/// assert_eq!(&got, b"hi");
///
/// proxy.cut().await;
/// assert_eq!(c.read(&mut got).await.unwrap_or(0), 0, "the connection is closed");
/// assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_err());
/// proxy.restore().await.unwrap();
/// assert!(tokio::net::TcpStream::connect(proxy.addr()).await.is_ok());
/// # }
/// ```
#[derive(Debug)]
pub struct TcpProxy {
    addr: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
    running: tokio::sync::Mutex<Running>,
}

/// What a proxy holds: the task serving its port, or, while cut, the
/// port bound and not listening.
#[derive(Debug)]
enum Running {
    Serving(tokio::task::JoinHandle<()>),
    Cut(Option<tokio::net::TcpSocket>),
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> std::io::Result<TcpProxy> {
        let socket = Self::socket((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
        let addr = socket.local_addr()?;
        let listener = socket.listen(1024)?;
        Ok(TcpProxy {
            addr,
            upstream,
            running: tokio::sync::Mutex::new(Running::Serving(Self::serve(listener, upstream))),
        })
    }

    /// A socket bound to `addr` that shares it with the proxy's other
    /// sockets (`SO_REUSEPORT`): the port is held by the next one before
    /// the last one is closed.
    fn socket(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        Ok(socket)
    }

    /// A proxy in front of the server a URL names
    /// (`scheme://[user[:password]@]host:port/...`), and the same URL
    /// through the proxy.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use databay_component::testing::TcpProxy;
    ///
    /// let (proxy, url) = TcpProxy::for_url("redis://app:pw@127.0.0.1:6379/0").await.unwrap();
    /// assert_eq!(url, format!("redis://app:pw@127.0.0.1:{}/0", proxy.port()));
    /// # }
    /// ```
    pub async fn for_url(url: &str) -> std::io::Result<(TcpProxy, String)> {
        let invalid = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a URL of the form scheme://[user@]host:port/...",
            )
        };
        let start = url.find("://").ok_or_else(invalid)? + 3;
        let end = url[start..]
            .find(['/', '?'])
            .map_or(url.len(), |i| start + i);
        let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
        let upstream = tokio::net::lookup_host(&url[host_start..end])
            .await?
            .next()
            .ok_or_else(invalid)?;
        let proxy = TcpProxy::start(upstream).await?;
        let proxied = format!("{}{}{}", &url[..host_start], proxy.addr(), &url[end..]);
        Ok((proxy, proxied))
    }

    /// Where connectors connect.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The port connectors connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every connection and the port, until [`restore`](Self::restore).
    pub async fn cut(&self) {
        let mut running = self.running.lock().await;
        if matches!(*running, Running::Serving(_)) {
            // Bound before the listener goes, the port is never free. Where
            // it cannot be shared, it is free until the restore.
            let held = Self::socket(self.addr).ok();
            if let Running::Serving(task) = std::mem::replace(&mut *running, Running::Cut(held)) {
                task.abort();
                // Aborted, the task drops the listener and every connection.
                let _ = task.await;
            }
        }
    }

    /// Listens again on the same port (a no-op while listening).
    pub async fn restore(&self) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if let Running::Cut(held) = &mut *running {
            let socket = match held.take() {
                Some(socket) => socket,
                None => Self::socket(self.addr)?,
            };
            let listener = socket.listen(1024)?;
            *running = Running::Serving(Self::serve(listener, self.upstream));
        }
        Ok(())
    }

    /// Accepts and forwards until aborted; the connections are tasks of a
    /// set this task owns, so aborting it closes them all.
    fn serve(
        listener: tokio::net::TcpListener,
        upstream: std::net::SocketAddr,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        connections.spawn(async move {
                            if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        })
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Ok(running) = self.running.try_lock()
            && let Running::Serving(task) = &*running
        {
            task.abort();
        }
    }
}

/// A TCP server on 127.0.0.1 that accepts every connection and never
/// says a word, for tests of a connector's timeouts: connecting works,
/// the handshake never comes. Dropping it closes everything.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use databay_component::testing::SilentServer;
/// use tokio::io::AsyncReadExt;
///
/// let silent = SilentServer::start().await.unwrap();
/// let mut c = tokio::net::TcpStream::connect(("127.0.0.1", silent.port())).await.unwrap();
/// let mut buf = [0; 1];
/// let read = tokio::time::timeout(std::time::Duration::from_millis(50), c.read(&mut buf)).await;
/// assert!(read.is_err(), "nothing comes");
/// # }
/// ```
#[derive(Debug)]
pub struct SilentServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SilentServer {
    /// Listens on a free port.
    pub async fn start() -> std::io::Result<SilentServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Ok(SilentServer { port, task })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP server on 127.0.0.1 that answers every connection at once with
/// an HTTP error page, then reads and drops whatever comes and keeps the
/// connection open: a connector pointed at the wrong port, whose server
/// answers in no protocol it speaks. Dropping it closes everything.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use databay_component::testing::GarbageServer;
/// use tokio::io::AsyncReadExt;
///
/// let garbage = GarbageServer::start().await.unwrap();
/// let mut c = tokio::net::TcpStream::connect(("127.0.0.1", garbage.port())).await.unwrap();
/// let mut got = vec![0; GarbageServer::ANSWER.len()];
/// c.read_exact(&mut got).await.unwrap();
/// assert_eq!(got, GarbageServer::ANSWER);
/// # }
/// ```
#[derive(Debug)]
pub struct GarbageServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl GarbageServer {
    /// What every connection gets.
    pub const ANSWER: &'static [u8] =
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 24\r\n\r\n<h1>400 Bad Request</h1>";

    /// Listens on a free port.
    pub async fn start() -> std::io::Result<GarbageServer> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                connections.spawn(async move {
                    if socket.write_all(Self::ANSWER).await.is_err() {
                        return;
                    }
                    let mut sink = [0; 4096];
                    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                    // The client closed: hold nothing.
                });
            }
        });
        Ok(GarbageServer { port, task })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for GarbageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the program `name` is installed: on `PATH`, or in `/usr/sbin`
/// or `/sbin`, where Debian puts servers and a user's `PATH` may not go.
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// [`find_program`], or a panic naming the program and how to install it
/// (`package` is the Debian package that has it).
pub fn require_program(name: &str, package: &str) -> std::path::PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is needed for this test and is not installed: \
             install it with `bash scripts/setup` (or `apt-get install {package}`)"
        )
    })
}

/// A server process one test owns, on a free port of 127.0.0.1, in a
/// directory of its own (its config, its log): killed and the directory
/// removed when dropped, also when the test fails. For the cases a shared
/// server cannot show, such as a refused login.
#[derive(Debug)]
pub struct OwnedServer {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnedServer {
    /// A fresh directory for a server's files, before it starts.
    pub fn dir(tag: &str) -> std::io::Result<std::path::PathBuf> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "databay-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Runs `program` in `dir` with the arguments `args` gives for a free
    /// port, and waits until that port accepts connections. A port taken
    /// meanwhile by someone else is tried again with another. Panics, with
    /// the server's log, when it does not come up within 20 s.
    pub async fn start(
        program: &std::path::Path,
        dir: std::path::PathBuf,
        args: impl Fn(u16) -> Vec<String>,
    ) -> OwnedServer {
        let log = dir.join("server.log");
        let shown = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for _ in 0..5 {
            let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
            {
                Ok(addr) => addr.port(),
                Err(e) => panic!("no free port on 127.0.0.1: {e}"),
            };
            let out = std::fs::File::create(&log)
                .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
            let err = out
                .try_clone()
                .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
            let child = std::process::Command::new(program)
                .args(args(port))
                .current_dir(&dir)
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
            let mut server = OwnedServer {
                child,
                port,
                dir: dir.clone(),
            };
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return server;
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    // Most likely the port was taken meanwhile: another one.
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} did not listen on 127.0.0.1:{port} within 20s; its log:\n{}",
                    program.display(),
                    shown()
                );
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            // Keep the directory for the next try.
            server.dir = std::path::PathBuf::new();
        }
        let text = shown();
        let _ = std::fs::remove_dir_all(&dir);
        panic!(
            "{} exited at start five times; its log:\n{text}",
            program.display()
        );
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for OwnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
