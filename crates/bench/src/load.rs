//! `load`: an HTTP/1.1 keep-alive load generator.
//!
//! `--connections` tasks each hold one keep-alive connection and send requests
//! back to back until `--duration` seconds after a `--warmup`. When `--tokens`
//! is given, each request picks a random line of that file (tokens look like
//! `at.<32 hex id>.<secret>`): the token goes into `--header` (default
//! `Authorization`), and `{token}` / `{id}` in the URL and the body are replaced
//! by the token and its id. The same generator drives authd, the baseline and
//! the peer, so the ratios between them are fair.
//!
//! Prints one JSON object: requests, errors, non_2xx, rps (2xx per second),
//! latency percentiles in microseconds and the CPU split between this process,
//! `--server-pid` and the rest of the machine.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, ToSocketAddrs as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST},
    Method, Request, Uri,
};
use hyper_util::rt::TokioIo;
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
use serde_json::json;
use tokio::net::TcpStream;

use crate::procstat;

/// Arguments of `authd-bench load`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Target URL, e.g. http://127.0.0.1:8080/api/auth/{id}; `{id}` and `{token}`
    /// are replaced per request by the chosen token's id and the token itself.
    #[arg(long, alias = "url-template")]
    url: String,
    /// Concurrent keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// File with one token per line; each request picks one at random.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Use only the first N tokens of the file.
    #[arg(long)]
    limit_tokens: Option<usize>,
    /// Header that carries the token; `none` sends it in no header.
    #[arg(long, default_value = "Authorization")]
    header: String,
    /// Request method (any HTTP method, e.g. GET, POST, PUT, DELETE).
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request body (`{token}` and `{id}` are replaced as in the URL).
    #[arg(long)]
    body: Option<String>,
    /// Content-Type of the body (default application/json when a body is given).
    #[arg(long)]
    content_type: Option<String>,
    /// Extra header sent on every request, as `Name: value` (repeatable).
    #[arg(long = "extra-header")]
    extra_headers: Vec<String>,
    /// Tokio worker threads of the generator (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// PID of the server, to report the CPU it used during the measured window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Per-request timeout in seconds (a request past it counts as an error).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

/// Where requests go: a loopback socket address, the Host header and the path.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) host: String,
    pub(crate) path: String,
}

impl Target {
    /// Parse `http://HOST:PORT/path?query`; only loopback hosts are accepted.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .find(|a| a.ip().is_loopback())
            .with_context(|| {
                format!("{authority} is not a loopback address: refusing to load it")
            })?;
        Ok(Self {
            addr,
            host: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// A string with `{token}` / `{id}` holes.
#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Token,
    Id,
}

#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
    /// The whole string when it has no hole.
    fixed: Option<Bytes>,
}

impl Template {
    fn parse(s: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut lit = String::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("{token}") {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Token);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("{id}") {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Id);
                rest = r;
            } else {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    lit.push(c);
                }
                rest = chars.as_str();
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        let fixed = match parts.as_slice() {
            [] => Some(Bytes::new()),
            [Part::Lit(l)] => Some(Bytes::from(l.clone())),
            _ => None,
        };
        Self { parts, fixed }
    }

    fn has_holes(&self) -> bool {
        self.fixed.is_none()
    }

    fn render(&self, token: &[u8], id: &[u8]) -> Bytes {
        if let Some(f) = &self.fixed {
            return f.clone();
        }
        let mut out = Vec::with_capacity(128);
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l.as_bytes()),
                Part::Token => out.extend_from_slice(token),
                Part::Id => out.extend_from_slice(id),
            }
        }
        Bytes::from(out)
    }
}

/// The tokens file, kept as one buffer and the byte range of each line.
#[derive(Debug, Default)]
struct Tokens {
    buf: Bytes,
    lines: Vec<(usize, usize)>,
}

impl Tokens {
    fn load(path: &Path, limit: Option<usize>) -> anyhow::Result<Self> {
        let buf = Bytes::from(
            std::fs::read(path)
                .with_context(|| format!("reading tokens from {}", path.display()))?,
        );
        let mut lines = Vec::new();
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                push_line(&buf, start, i, &mut lines);
                start = i + 1;
            }
        }
        push_line(&buf, start, buf.len(), &mut lines);
        if let Some(n) = limit {
            lines.truncate(n);
        }
        if lines.is_empty() {
            bail!("no token in {}", path.display());
        }
        Ok(Self { buf, lines })
    }

    /// The token of line `i` and its id (the middle of `at.<id>.<secret>`).
    fn get(&self, i: usize) -> (Bytes, Bytes) {
        let (a, b) = self.lines.get(i).copied().unwrap_or((0, 0));
        let token = self.buf.slice(a..b);
        let id = token_id(&token);
        (token, id)
    }
}

fn push_line(buf: &Bytes, start: usize, mut end: usize, lines: &mut Vec<(usize, usize)>) {
    while end > start && matches!(buf.get(end - 1), Some(b'\r' | b' ' | b'\t')) {
        end -= 1;
    }
    if end > start {
        lines.push((start, end));
    }
}

/// The id part of `at.<id>.<secret>`; the whole token when it has another shape.
fn token_id(token: &Bytes) -> Bytes {
    let mut dots = token
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'.')
        .map(|(i, _)| i);
    match (dots.next(), dots.next()) {
        (Some(a), Some(b)) => token.slice(a + 1..b),
        _ => token.clone(),
    }
}

/// Everything the connection tasks share.
#[derive(Debug)]
struct Plan {
    target: Target,
    host: HeaderValue,
    method: Method,
    path: Template,
    fixed_uri: Option<Uri>,
    body: Option<Template>,
    content_type: Option<HeaderValue>,
    token_header: Option<HeaderName>,
    extra: Vec<(HeaderName, HeaderValue)>,
    tokens: Option<Tokens>,
    measure_start: Instant,
    end: Instant,
    timeout: Duration,
}

impl Plan {
    fn request(&self, rng: &mut StdRng) -> anyhow::Result<Request<Full<Bytes>>> {
        let (token, id) = match &self.tokens {
            Some(t) => t.get(rng.gen_range(0..t.lines.len())),
            None => (Bytes::new(), Bytes::new()),
        };
        let uri = match &self.fixed_uri {
            Some(u) => u.clone(),
            None => Uri::from_maybe_shared(self.path.render(&token, &id))?,
        };
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .header(HOST, self.host.clone());
        if let (Some(name), false) = (&self.token_header, token.is_empty()) {
            builder = builder.header(name.clone(), HeaderValue::from_maybe_shared(token.clone())?);
        }
        for (n, v) in &self.extra {
            builder = builder.header(n.clone(), v.clone());
        }
        let body = match &self.body {
            Some(t) => {
                if let Some(ct) = &self.content_type {
                    builder = builder.header(CONTENT_TYPE, ct.clone());
                }
                t.render(&token, &id)
            }
            None => Bytes::new(),
        };
        Ok(builder.body(Full::new(body))?)
    }
}

/// What one connection task saw in the measured window.
#[derive(Debug)]
struct Tally {
    hist: Histogram<u64>,
    requests: u64,
    non_2xx: u64,
    errors: u64,
    reconnects: u64,
    statuses: BTreeMap<u16, u64>,
    last_error: Option<String>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            requests: 0,
            non_2xx: 0,
            errors: 0,
            reconnects: 0,
            statuses: BTreeMap::new(),
            last_error: None,
        })
    }

    fn merge(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.hist.add(&other.hist)?;
        self.requests += other.requests;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_insert(0) += v;
        }
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
        Ok(())
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One keep-alive connection sending requests back to back until `plan.end`.
async fn worker(plan: Arc<Plan>, seed: u64) -> anyhow::Result<Tally> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::new()?;
    let mut sender: Option<Sender> = None;
    let mut connected_once = false;
    while Instant::now() < plan.end {
        let mut s = match sender.take() {
            Some(s) => s,
            None => {
                match tokio::time::timeout(plan.timeout, connect(&plan.target)).await {
                    Ok(Ok(s)) => {
                        if connected_once {
                            tally.reconnects += 1;
                        }
                        connected_once = true;
                        s
                    }
                    other => {
                        if Instant::now() >= plan.measure_start {
                            tally.errors += 1;
                            tally.last_error = Some(match other {
                                Ok(Err(e)) => format!("connect: {e}"),
                                _ => "connect: timeout".to_string(),
                            });
                        }
                        // Bounded back-off: the loop still ends at plan.end.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
        };
        if s.ready().await.is_err() {
            // The server closed the idle connection: open another one.
            continue;
        }
        let req = plan.request(&mut rng)?;
        let t0 = Instant::now();
        let outcome = tokio::time::timeout(plan.timeout, async {
            let resp = s.send_request(req).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        })
        .await;
        let t1 = Instant::now();
        let in_window = t1 >= plan.measure_start && t1 <= plan.end;
        match outcome {
            Ok(Ok(status)) => {
                sender = Some(s);
                if in_window {
                    tally.requests += 1;
                    let us = u64::try_from((t1 - t0).as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1);
                    tally.hist.saturating_record(us);
                    if !status.is_success() {
                        tally.non_2xx += 1;
                        *tally.statuses.entry(status.as_u16()).or_insert(0) += 1;
                    }
                }
            }
            other => {
                if in_window || t1 > plan.end {
                    tally.errors += 1;
                    tally.last_error = Some(match other {
                        Ok(Err(e)) => format!("request: {e}"),
                        _ => "request: timeout".to_string(),
                    });
                }
            }
        }
    }
    Ok(tally)
}

fn header_pair(s: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (n, v) = s
        .split_once(':')
        .with_context(|| format!("--extra-header wants `Name: value`, got {s:?}"))?;
    Ok((
        HeaderName::from_bytes(n.trim().as_bytes())?,
        HeaderValue::from_str(v.trim())?,
    ))
}

/// `--method`: any HTTP method, case-insensitive.
fn parse_method(s: &str) -> anyhow::Result<Method> {
    Method::from_bytes(s.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("--method {s:?} is not an HTTP method"))
}

/// Run the load and print the JSON summary.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= 600.0,
        "--duration must be in (0, 600] seconds"
    );
    anyhow::ensure!(
        (0.0..=60.0).contains(&args.warmup),
        "--warmup must be in [0, 60] seconds"
    );
    let target = Target::parse(&args.url)?;
    let path = Template::parse(&target.path);
    let tokens = args
        .tokens
        .as_ref()
        .map(|p| Tokens::load(p, args.limit_tokens))
        .transpose()?;
    let body = args.body.as_deref().map(Template::parse);
    if tokens.is_none() && (path.has_holes() || body.as_ref().is_some_and(Template::has_holes)) {
        bail!("the URL or body has a {{token}}/{{id}} hole but no --tokens file was given");
    }
    let token_header = match args.header.as_str() {
        "" | "none" => None,
        h => Some(HeaderName::from_bytes(h.as_bytes())?),
    };
    let content_type = match (&args.content_type, &body) {
        (Some(ct), _) => Some(HeaderValue::from_str(ct)?),
        (None, Some(_)) => Some(HeaderValue::from_static("application/json")),
        (None, None) => None,
    };
    let extra = args
        .extra_headers
        .iter()
        .map(|h| header_pair(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let method = parse_method(&args.method)?;
    let fixed_uri = match &path.fixed {
        Some(p) => Some(Uri::from_maybe_shared(p.clone())?),
        None => None,
    };
    let host = HeaderValue::from_str(&target.host)?;
    let timeout = Duration::from_secs_f64(args.timeout.clamp(0.1, 60.0));

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = builder.build()?;
    let server_pid = args.server_pid.map(|p| p.to_string());

    rt.block_on(async move {
        let start = Instant::now();
        let measure_start = start + Duration::from_secs_f64(args.warmup);
        let end = measure_start + Duration::from_secs_f64(args.duration);
        let plan = Arc::new(Plan {
            target,
            host,
            method,
            path,
            fixed_uri,
            body,
            content_type,
            token_header,
            extra,
            tokens,
            measure_start,
            end,
            timeout,
        });

        // CPU split over the measured window.
        let cpu_pid = server_pid.clone();
        let cpu = tokio::spawn(async move {
            tokio::time::sleep_until(measure_start.into()).await;
            let s0 = cpu_pid.as_deref().and_then(procstat::cpu_seconds);
            let c0 = procstat::cpu_seconds("self");
            let m0 = procstat::machine_busy_seconds();
            tokio::time::sleep_until(end.into()).await;
            let s1 = cpu_pid.as_deref().and_then(procstat::cpu_seconds);
            let c1 = procstat::cpu_seconds("self");
            let m1 = procstat::machine_busy_seconds();
            let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
            (diff(s0, s1), diff(c0, c1), diff(m0, m1))
        });

        let mut seeder = StdRng::from_entropy();
        let handles: Vec<_> = (0..args.connections)
            .map(|_| tokio::spawn(worker(Arc::clone(&plan), seeder.gen())))
            .collect();
        let mut total = Tally::new()?;
        // Every worker stops by itself at `end` (+ one request timeout); this
        // outer bound only guards against a bug.
        let hard_stop = end + timeout + Duration::from_secs(5);
        for h in handles {
            match tokio::time::timeout_at(hard_stop.into(), h).await {
                Ok(Ok(Ok(t))) => total.merge(&t)?,
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(e)) => bail!("load task failed: {e}"),
                Err(_) => bail!("load tasks did not stop in time"),
            }
        }
        let (server_cpu, client_cpu, machine_cpu) = cpu.await.unwrap_or((None, None, None));
        let secs = args.duration;
        let ok = total.requests - total.non_2xx;
        let h = &total.hist;
        let pct = |q: f64| {
            if total.requests == 0 {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        let statuses: serde_json::Map<String, serde_json::Value> = total
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let out = json!({
            "requests": total.requests,
            "ok": ok,
            "errors": total.errors,
            "non_2xx": total.non_2xx,
            "non_2xx_statuses": statuses,
            "rps": ok as f64 / secs,
            "total_rps": total.requests as f64 / secs,
            "p50_us": pct(0.50),
            "p90_us": pct(0.90),
            "p99_us": pct(0.99),
            "max_us": if total.requests == 0 { 0 } else { h.max() },
            "mean_us": if total.requests == 0 { 0.0 } else { h.mean() },
            "connections": args.connections,
            "duration_s": secs,
            "reconnects": total.reconnects,
            "server_cpu_s": server_cpu,
            "client_cpu_s": client_cpu,
            "machine_cpu_s": machine_cpu,
            "last_error": total.last_error,
        });
        println!("{out}");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_holes() {
        let t = Template::parse("/api/auth/{id}?k={token}");
        assert!(t.has_holes());
        assert_eq!(
            &t.render(b"at.ab.cd", b"ab")[..],
            b"/api/auth/ab?k=at.ab.cd"
        );
        let f = Template::parse("/readyz");
        assert!(!f.has_holes());
        assert_eq!(&f.render(b"x", b"y")[..], b"/readyz");
    }

    #[test]
    fn token_id_is_the_middle_part() {
        let t = Bytes::from_static(b"at.0123456789abcdef0123456789abcdef.s3cr3t");
        assert_eq!(&token_id(&t)[..], b"0123456789abcdef0123456789abcdef");
        let odd = Bytes::from_static(b"opaque");
        assert_eq!(&token_id(&odd)[..], b"opaque");
    }

    #[test]
    fn any_method_is_accepted() {
        assert_eq!(parse_method("put").unwrap(), Method::PUT);
        assert_eq!(parse_method("DELETE").unwrap(), Method::DELETE);
        assert_eq!(parse_method("POST").unwrap(), Method::POST);
        assert!(parse_method("NOT A METHOD").is_err());
    }

    #[test]
    fn targets_are_loopback_only() {
        let t = Target::parse("http://127.0.0.1:8080/api/auth/{id}").unwrap();
        assert_eq!(t.addr.port(), 8080);
        assert_eq!(t.path, "/api/auth/{id}");
        assert!(Target::parse("http://10.0.0.1:80/").is_err());
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }
}
