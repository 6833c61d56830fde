//! Row specs (from the plan's JSON) and running them: `floor` rows run a command once per
//! event with the event on stdin; `runtime` rows start a Lambda runtime against the loopback
//! server and drive invocations through it; `serve` rows start `bootstrap serve`, which offers
//! the Invoke API itself, and drive invocations straight to it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Client, Reply};
use crate::process::{self, Runtime, Spec, TreeMem};
use crate::server::{Delivery, Server, Start};

/// How long a runtime gets from spawn to its first /next.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM to SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Floor,
    Runtime,
    /// `bootstrap serve --port 0`: its own Invoke API, no driver server in between.
    Serve,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The answer is the event with `"echo": true` added (compared as JSON).
    Echo,
    /// The answer is the event, byte for byte.
    Same,
    /// The answer is this text, whatever the event.
    Text(String),
}

/// How a row's runtime must post its answers; a row that says so also gets the times at which
/// each answer's first and last byte reached the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResponseMode {
    Buffered,
    Streaming,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub spec: Spec,
    /// Said in the table's notes when this attempt is the one that ran (not the first).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RowSpec {
    pub lang: String,
    pub name: String,
    /// "floor", "old", "ric" or "": which ratio this row is the base of.
    pub role: String,
    pub kind: Kind,
    pub n: usize,
    pub warmup: usize,
    /// Idle time before each invocation (the "arriving apart" scenario).
    pub gap_ms: u64,
    pub check: Check,
    /// 0: a small API-Gateway-like event; else an event of exactly this many bytes.
    pub event_bytes: usize,
    /// Runtime rows: the way the answers must be posted, when the row measures their delivery.
    pub response_mode: Option<ResponseMode>,
    /// The answer also carries this key (an object of numbers the handler reports about
    /// itself): it is taken out before the answer is checked, and its numbers are kept.
    pub report_key: Option<String>,
    /// Tried in order; the first that starts (reaches /next) is measured.
    pub attempts: Vec<Attempt>,
}

fn str_field(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("missing string {key:?}"))
}

fn num_field(v: &Value, key: &str, default: u64) -> Result<u64, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => x.as_u64().ok_or_else(|| format!("{key:?} is not a non-negative integer")),
    }
}

pub fn parse_attempt(v: &Value) -> Result<Attempt, String> {
    let argv = v
        .get("argv")
        .and_then(Value::as_array)
        .ok_or("attempt without \"argv\"")?
        .iter()
        .map(|a| a.as_str().map(str::to_string).ok_or("argv holds a non-string"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = BTreeMap::new();
    if let Some(map) = v.get("env").and_then(Value::as_object) {
        for (k, val) in map {
            env.insert(k.clone(), val.as_str().ok_or("env value is not a string")?.to_string());
        }
    }
    let cwd = v.get("cwd").and_then(Value::as_str).map(str::to_string);
    let note = v.get("note").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    Ok(Attempt { spec: Spec { argv, env, cwd }, note })
}

pub fn parse_attempts(v: &Value) -> Result<Vec<Attempt>, String> {
    let list = v.get("attempts").and_then(Value::as_array).ok_or("missing \"attempts\"")?;
    if list.is_empty() {
        return Err("\"attempts\" is empty".into());
    }
    list.iter().map(parse_attempt).collect()
}

impl RowSpec {
    pub fn from_json(v: &Value) -> Result<RowSpec, String> {
        let kind = match str_field(v, "kind")?.as_str() {
            "floor" => Kind::Floor,
            "runtime" => Kind::Runtime,
            "serve" => Kind::Serve,
            other => return Err(format!("unknown kind {other:?}")),
        };
        let check = match v.get("check").and_then(Value::as_str).unwrap_or("echo") {
            "echo" => Check::Echo,
            "same" => Check::Same,
            "text" => Check::Text(str_field(v, "expect")?),
            other => return Err(format!("unknown check {other:?}")),
        };
        let response_mode = match v.get("response_mode").and_then(Value::as_str) {
            None => None,
            Some("buffered") => Some(ResponseMode::Buffered),
            Some("streaming") => Some(ResponseMode::Streaming),
            Some(other) => return Err(format!("unknown response_mode {other:?}")),
        };
        Ok(RowSpec {
            lang: str_field(v, "lang")?,
            name: str_field(v, "name")?,
            role: v.get("role").and_then(Value::as_str).unwrap_or("").to_string(),
            kind,
            n: num_field(v, "n", 100)? as usize,
            warmup: num_field(v, "warmup", 3)? as usize,
            gap_ms: num_field(v, "gap_ms", 0)?,
            check,
            event_bytes: num_field(v, "event_bytes", 0)? as usize,
            response_mode,
            report_key: v.get("report_key").and_then(Value::as_str).map(str::to_string),
            attempts: parse_attempts(v)?,
        })
    }

    fn log_path(&self, log_dir: &Path, attempt: usize) -> PathBuf {
        let slug: String = format!("{}-{}", self.lang, self.name)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let slug = slug.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
        log_dir.join(if attempt == 0 {
            format!("{slug}.log")
        } else {
            format!("{slug}.{attempt}.log")
        })
    }
}

/// A row's readings of its handler processes, and what its handler reported.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    /// The runtime's descendants (its handler processes), read while the row is idle: the
    /// reading with the highest Pss sum, the highest Rss sum, and how many readings there were
    /// (and how many of them were taken before the tree was idle).
    pub tree_peak: Option<TreeMem>,
    pub tree_rss_peak_kib: u64,
    pub tree_samples: usize,
    pub tree_unsettled: usize,
    /// At each reading, the Private_Dirty of a child a runner had forked (fork mode's child
    /// waiting for its event), if there was one.
    pub child_private_dirty_kib: Vec<u64>,
    /// The numbers the handler reported in the answer's `report_key` object, per measured
    /// invocation, by name.
    pub reports: BTreeMap<String, Vec<f64>>,
}

/// The numbers of one row that ran.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Per measured invocation (warm-up excluded).
    pub latencies: Vec<Duration>,
    /// Per measured invocation of a row with a `response_mode`: Invoke sent → the answer's
    /// first byte at the server, and → its last byte (the end of the runtime's post).
    pub first_byte: Vec<Duration>,
    pub last_byte: Vec<Duration>,
    /// Wall time of the measured loop.
    pub elapsed: Duration,
    /// Invocations made, warm-up included, and how many of them failed.
    pub invocations: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
    pub peak_rss_kib: Option<u64>,
    /// What was read besides the timings (boxed: most rows have little of it).
    pub readings: Box<Readings>,
    pub cold_start: Option<Duration>,
    pub note: Option<String>,
    /// Why the row stopped before N (the runtime died, the connection broke).
    pub cut_short: Option<String>,
}

impl Measured {
    /// Every invocation failed: the timings measure failing, not the runtime.
    pub fn all_failed(&self) -> bool {
        self.invocations > 0 && self.failures >= self.invocations
    }

    fn fail(&mut self, why: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(why);
    }
}

pub enum Outcome {
    Ran(Measured),
    /// Not measured, and why ("init error: ...").
    NotAvailable(String),
}

/// A row being measured: started and warmed up, measured in blocks (so that the rows of a
/// language can take turns and see the same machine), then finished.
pub struct Active<'a> {
    row: &'a RowSpec,
    state: State,
    m: Measured,
    /// Invocations made, warm-up included: the next event's sequence number.
    seq: usize,
}

enum State {
    Floor { log: File },
    Runtime(Box<Live>),
    Serve(Box<Serving>),
    NotAvailable(String),
    Finished,
}

/// A `bootstrap serve` and the client connected to its Invoke API.
struct Serving {
    runtime: Runtime,
    client: Client,
}

struct Live {
    started: Started,
    client: Option<Client>,
    watcher_done: Arc<AtomicBool>,
    watcher: Option<thread::JoinHandle<()>>,
}

impl<'a> Active<'a> {
    /// Start the row (a runtime: the first attempt that reaches /next) and run its warm-up.
    pub fn prepare(row: &'a RowSpec, log_dir: &Path) -> Active<'a> {
        let mut active = Active { row, state: State::Finished, m: Measured::default(), seq: 0 };
        active.state = match row.kind {
            Kind::Floor => {
                let path = row.log_path(log_dir, 0);
                match File::create(&path) {
                    Ok(log) => State::Floor { log },
                    Err(e) => State::NotAvailable(format!("cannot open {}: {e}", path.display())),
                }
            }
            Kind::Runtime => active.start_runtime(log_dir),
            Kind::Serve => active.start_serve(log_dir),
        };
        for _ in 0..row.warmup {
            if !active.invoke_once(false) {
                break;
            }
        }
        active
    }

    fn start_runtime(&mut self, log_dir: &Path) -> State {
        let mut failed: Vec<String> = Vec::new();
        for (i, attempt) in self.row.attempts.iter().enumerate() {
            let started = match start(attempt, &self.row.log_path(log_dir, i)) {
                Ok(started) => started,
                Err(why) => {
                    failed.push(why);
                    continue;
                }
            };
            if i > 0 {
                let why = failed.last().cloned().unwrap_or_default();
                let what = attempt.note.clone().unwrap_or_else(|| format!("attempt {}", i + 1));
                self.m.note = Some(format!("{what} (the first attempt failed: {why})"));
            }
            self.m.cold_start = Some(started.cold_start);
            // Tell the server when the runtime dies, so that a pending Invoke fails at once.
            let watcher_done = Arc::new(AtomicBool::new(false));
            let watcher = {
                let done = Arc::clone(&watcher_done);
                let pid = started.runtime.pid();
                let gone = started.server.notifier();
                thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if !process::alive(pid) {
                            gone.runtime_gone();
                            return;
                        }
                        thread::sleep(Duration::from_millis(50));
                    }
                })
            };
            let client = match Client::connect(started.server.addr()) {
                Ok(client) => Some(client),
                Err(e) => {
                    self.m.cut_short = Some(format!("cannot connect to the Invoke endpoint: {e}"));
                    None
                }
            };
            return State::Runtime(Box::new(Live {
                started,
                client,
                watcher_done,
                watcher: Some(watcher),
            }));
        }
        State::NotAvailable(failed.pop().unwrap_or_default())
    }

    /// Starts `bootstrap serve` (the first attempt), reads the address it prints and connects.
    fn start_serve(&mut self, log_dir: &Path) -> State {
        let attempt = &self.row.attempts[0];
        let log = self.row.log_path(log_dir, 0);
        let (mut runtime, stdout) = match Runtime::spawn_serve(&attempt.spec, &log) {
            Ok(started) => started,
            Err(e) => return State::NotAvailable(format!("cannot start bootstrap serve: {e}")),
        };
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
            // Read on, so that nothing it prints later can block it.
            for _ in lines {}
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            runtime.stop(STOP_GRACE);
            let first = process::first_log_line(&log).unwrap_or_default();
            return State::NotAvailable(format!("no address line ({line:?}): {first}"));
        };
        // Spawn to the address line: init, and both servers listening.
        self.m.cold_start = Some(runtime.spawned.elapsed());
        match Client::connect(addr) {
            Ok(client) => State::Serve(Box::new(Serving { runtime, client })),
            Err(e) => {
                runtime.stop(STOP_GRACE);
                State::NotAvailable(format!("cannot connect to {addr}: {e}"))
            }
        }
    }

    /// Whether more invocations can be made (started, and not cut short).
    pub fn usable(&self) -> bool {
        matches!(self.state, State::Floor { .. } | State::Runtime(_) | State::Serve(_))
            && self.m.cut_short.is_none()
    }

    /// Up to `count` measured invocations, one after another.
    pub fn block(&mut self, count: usize) {
        let started = Instant::now();
        let mut gaps = Duration::ZERO;
        for _ in 0..count {
            if !self.usable() {
                break;
            }
            if self.row.gap_ms > 0 && self.seq > 0 {
                let gap = Duration::from_millis(self.row.gap_ms);
                thread::sleep(gap);
                gaps += gap;
            }
            self.invoke_once(true);
        }
        // The loop's wall time without the idle gaps (a gap row reports no rate anyway).
        self.m.elapsed += started.elapsed().saturating_sub(gaps);
    }

    /// The process id of the runtime, while it runs.
    pub fn runtime_pid(&self) -> Option<u32> {
        match &self.state {
            State::Runtime(live) => Some(live.started.runtime.pid()),
            State::Serve(serving) => Some(serving.runtime.pid()),
            _ => None,
        }
    }

    /// Read the memory of the runtime's descendants, once they are idle (at most `wait`), and
    /// keep the peak.
    pub fn sample_tree(&mut self, wait: Duration) {
        let Some(pid) = self.runtime_pid() else { return };
        if !process::alive(pid) {
            return;
        }
        let t = process::tree_memory(pid, wait);
        let m = &mut self.m;
        m.readings.tree_samples += 1;
        m.readings.tree_unsettled += usize::from(t.unsettled);
        m.readings.tree_rss_peak_kib = m.readings.tree_rss_peak_kib.max(t.rss_kib());
        m.readings
            .child_private_dirty_kib
            .extend(t.forked_children().iter().filter_map(|p| p.private_dirty_kib));
        if m.readings.tree_peak.as_ref().is_none_or(|peak| t.pss_kib() > peak.pss_kib()) {
            m.readings.tree_peak = Some(t);
        }
    }

    /// Failed invocations so far, and why the first failed.
    pub fn failures(&self) -> (usize, Option<&str>) {
        (self.m.failures, self.m.first_failure.as_deref())
    }

    /// Measured invocations so far.
    pub fn measured(&self) -> usize {
        self.m.latencies.len()
    }

    /// One invocation; `false` when the row cannot go on.
    fn invoke_once(&mut self, measured: bool) -> bool {
        if !self.usable() {
            return false;
        }
        let ev = event(self.seq, self.row.event_bytes);
        self.seq += 1;
        self.m.invocations += 1;
        let result = match &mut self.state {
            State::Floor { log } => floor_once(self.row, log, ev),
            State::Runtime(live) => runtime_once(self.row, live, ev),
            State::Serve(serving) => serve_once(self.row, serving, ev),
            State::NotAvailable(_) | State::Finished => return false,
        };
        match result {
            Ok(Invoked { took, verdict, bytes_at, report }) => {
                if measured {
                    self.m.latencies.push(took);
                    for (key, value) in report.unwrap_or_default() {
                        if let Some(x) = value.as_f64() {
                            self.m.readings.reports.entry(key).or_default().push(x);
                        }
                    }
                    if let Some((first, last)) = bytes_at {
                        self.m.first_byte.push(first);
                        self.m.last_byte.push(last);
                    }
                }
                if let Err(why) = verdict {
                    self.m.fail(why);
                }
            }
            // A floor command that cannot even start is not available, like a runtime.
            Err(why) if self.row.kind == Kind::Floor && self.m.invocations == 1 => {
                self.state = State::NotAvailable(why);
            }
            Err(why) => {
                self.m.fail(why.clone());
                self.m.cut_short =
                    Some(format!("{why} (after {} invocations)", self.m.invocations - 1));
            }
        }
        let runtime = match &self.state {
            State::Runtime(live) => Some(&live.started.runtime),
            State::Serve(serving) => Some(&serving.runtime),
            _ => None,
        };
        if self.m.cut_short.is_none() && runtime.is_some_and(Runtime::exited) {
            self.m.cut_short =
                Some(format!("the runtime exited after {} invocations", self.m.invocations));
        }
        self.usable()
    }

    /// Stop the runtime (reading its peak RSS first) and give the row's outcome.
    pub fn finish(mut self) -> Outcome {
        // The last reading of the runtime's descendants, the row idle after its last invocation.
        self.sample_tree(TREE_WAIT);
        match std::mem::replace(&mut self.state, State::Finished) {
            State::NotAvailable(why) => return Outcome::NotAvailable(why),
            State::Floor { .. } | State::Finished => {}
            State::Runtime(live) => {
                let Live { started, client, watcher_done, watcher } = *live;
                let Started { mut server, mut runtime, .. } = started;
                self.m.peak_rss_kib = runtime.peak_rss_kib();
                watcher_done.store(true, Ordering::Relaxed);
                if let Some(w) = watcher {
                    let _ = w.join();
                }
                drop(client);
                runtime.stop(STOP_GRACE);
                server.stop();
                for what in server.unexpected() {
                    self.m.fail(format!("unexpected request: {what}"));
                }
            }
            State::Serve(serving) => {
                let Serving { mut runtime, client } = *serving;
                self.m.peak_rss_kib = runtime.peak_rss_kib();
                drop(client);
                runtime.stop(STOP_GRACE);
            }
        }
        Outcome::Ran(std::mem::take(&mut self.m))
    }
}

/// How long a reading of the runtime's descendants waits for them to be idle.
pub const TREE_WAIT: Duration = Duration::from_secs(3);

/// Run a row on its own: warm-up, N measured invocations, stop.
pub fn run(row: &RowSpec, log_dir: &Path) -> Outcome {
    let mut active = Active::prepare(row, log_dir);
    active.sample_tree(TREE_WAIT);
    active.block(row.n);
    active.finish()
}

/// What one invocation gave; `Err` when it could not be made at all (the command did not
/// start, the connection broke).
type Once = Result<Invoked, String>;

struct Invoked {
    took: Duration,
    /// Whether the answer was right.
    verdict: Result<(), String>,
    /// With a `response_mode`: Invoke sent → the answer's first and last byte at the server.
    bytes_at: Option<(Duration, Duration)>,
    /// With a `report_key`: what the handler reported.
    report: Option<serde_json::Map<String, Value>>,
}

/// One floor run: start the command, event on stdin, read stdout, wait.
fn floor_once(row: &RowSpec, log: &File, ev: Vec<u8>) -> Once {
    let spec = &row.attempts[0].spec;
    let mut cmd = spec.command().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.try_clone().map_err(|e| e.to_string())?);
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", spec.argv[0]))?;
    // Write stdin from a thread so that a child that prints first cannot deadlock us.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&ev);
        ev
    });
    let mut out = Vec::new();
    let read = child.stdout.take().expect("piped stdout").read_to_end(&mut out);
    let status = child.wait();
    let took = t.elapsed();
    let ev = writer.join().expect("stdin writer");
    let verdict = match (read, status) {
        (Ok(_), Ok(status)) if status.success() => check(&row.check, &ev, &out),
        (_, Ok(status)) => Err(format!("{status}: {}", snippet(&out))),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    };
    Ok(Invoked { took, verdict, bytes_at: None, report: None })
}

/// Takes the handler's report (the object under `key`) out of a JSON answer; the answer
/// without it is what is checked. An answer without the object is left as it is.
fn take_report(key: &str, body: &mut Vec<u8>) -> Option<serde_json::Map<String, Value>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let report = match v.as_object_mut()?.remove(key)? {
        Value::Object(map) => map,
        _ => return None,
    };
    *body = serde_json::to_vec(&v).ok()?;
    Some(report)
}

fn runtime_once(row: &RowSpec, live: &mut Live, ev: Vec<u8>) -> Once {
    let client = live.client.as_mut().ok_or("no Invoke connection")?;
    let (took, mut reply) =
        client.invoke(&ev).map_err(|e| format!("the Invoke connection failed: {e}"))?;
    let report = row.report_key.as_deref().and_then(|key| take_report(key, &mut reply.body));
    if row.report_key.is_some() && report.is_none() && reply.function_error.is_none() {
        return Ok(Invoked {
            took,
            verdict: Err(format!("the answer has no report: {}", snippet(&reply.body))),
            bytes_at: None,
            report,
        });
    }
    let mut verdict = check_reply(&row.check, &ev, &reply);
    let mut bytes_at = None;
    if let Some(mode) = row.response_mode {
        let delivery = reply.request_id.as_deref().and_then(|id| live.started.server.delivery(id));
        match check_delivery(mode, delivery) {
            Ok(d) => {
                let since_sent = |t: Instant| t.saturating_duration_since(reply.sent);
                bytes_at = Some((since_sent(d.first_byte), since_sent(d.last_byte)));
            }
            Err(why) => verdict = verdict.and(Err(why)),
        }
    }
    Ok(Invoked { took, verdict, bytes_at, report })
}

/// One invocation straight to `bootstrap serve`'s Invoke API.
fn serve_once(row: &RowSpec, serving: &mut Serving, ev: Vec<u8>) -> Once {
    let (took, reply) =
        serving.client.invoke(&ev).map_err(|e| format!("the Invoke connection failed: {e}"))?;
    Ok(Invoked {
        took,
        verdict: check_reply(&row.check, &ev, &reply),
        bytes_at: None,
        report: None,
    })
}

/// The delivery of an answer, if it was posted the way the row wants.
fn check_delivery(mode: ResponseMode, delivery: Option<Delivery>) -> Result<Delivery, String> {
    let d = delivery.ok_or("the server has no record of the answer's post")?;
    match (mode, d.streamed) {
        (ResponseMode::Streaming, false) => {
            Err("the answer was posted buffered, not streamed".into())
        }
        (ResponseMode::Buffered, true) => {
            Err("the answer was streamed, not posted buffered".into())
        }
        _ => Ok(d),
    }
}

/// A small API-Gateway-shaped event, different for every invocation; or a big one.
pub fn event(seq: usize, bytes: usize) -> Vec<u8> {
    if bytes == 0 {
        return format!(
            concat!(
                r#"{{"seq":{seq},"resource":"/orders/{{id}}","path":"/orders/{seq}","httpMethod":"POST","#,
                r#""headers":{{"content-type":"application/json","user-agent":"bench-driver/1"}},"#,
                r#""queryStringParameters":{{"page":"1"}},"#,
                r#""body":"{{\"item\":\"book\",\"qty\":2}}","isBase64Encoded":false}}"#
            ),
            seq = seq
        )
        .into_bytes();
    }
    let head = format!(r#"{{"seq":{seq},"data":""#);
    let tail = r#""}"#;
    let fill = bytes.saturating_sub(head.len() + tail.len());
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(head.as_bytes());
    out.extend((0..fill).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]));
    out.extend_from_slice(tail.as_bytes());
    out
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).replace('\n', " ");
    if bytes.len() > 200 {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// `Ok` when `answer` is the right answer to `event`.
pub fn check(kind: &Check, event: &[u8], answer: &[u8]) -> Result<(), String> {
    match kind {
        Check::Text(text) if answer == text.as_bytes() => Ok(()),
        Check::Text(text) => {
            Err(format!("answer is not {:?}: {}", snippet(text.as_bytes()), snippet(answer)))
        }
        Check::Same if answer == event => Ok(()),
        Check::Same => Err(format!("answer differs from the event: {}", snippet(answer))),
        Check::Echo => {
            let sent: Value =
                serde_json::from_slice(event).map_err(|e| format!("bad event: {e}"))?;
            let mut got: Value = serde_json::from_slice(answer)
                .map_err(|e| format!("answer is not JSON ({e}): {}", snippet(answer)))?;
            let Some(obj) = got.as_object_mut() else {
                return Err(format!("answer is not a JSON object: {}", snippet(answer)));
            };
            if obj.remove("echo") != Some(Value::Bool(true)) {
                return Err(format!("answer lacks \"echo\": true: {}", snippet(answer)));
            }
            if got != sent {
                return Err(format!("answer is not the event plus \"echo\": {}", snippet(answer)));
            }
            Ok(())
        }
    }
}

/// A runtime that reached /next, with its server.
pub struct Started {
    pub server: Server,
    pub runtime: Runtime,
    pub cold_start: Duration,
}

/// Start one attempt and wait for its first /next. `Err` says why it did not get there.
pub fn start(attempt: &Attempt, log: &Path) -> Result<Started, String> {
    let server = Server::start().map_err(|e| format!("cannot start the server: {e}"))?;
    let api = server.addr().to_string();
    let mut runtime = Runtime::spawn(&attempt.spec, &api, log).map_err(|e| {
        format!("cannot start {}: {e}", attempt.spec.argv.first().map_or("", String::as_str))
    })?;
    let until = runtime.spawned + START_TIMEOUT;
    loop {
        match server.start_event() {
            Some(Start::Next(at)) => {
                let cold_start = at - runtime.spawned;
                return Ok(Started { server, runtime, cold_start });
            }
            Some(Start::InitError(body)) => {
                runtime.stop(STOP_GRACE);
                return Err(format!("init error: {}", init_error_summary(&body)));
            }
            None => {}
        }
        if runtime.exited() {
            // An init error posted just before exiting is already recorded; check once more.
            if let Some(Start::InitError(body)) = server.start_event() {
                runtime.stop(STOP_GRACE);
                return Err(format!("init error: {}", init_error_summary(&body)));
            }
            let status = runtime.exit_status().map(|s| s.to_string()).unwrap_or_default();
            let line = process::first_log_line(log).unwrap_or_default();
            return Err(format!("exited ({status}) before /next: {line}"));
        }
        if Instant::now() >= until {
            runtime.stop(STOP_GRACE);
            return Err(format!("no /next within {} s", START_TIMEOUT.as_secs()));
        }
        server.wait_change(Duration::from_millis(5));
    }
}

/// The first line of the init error's message (plus the `unknown field` line of a config
/// error, which names the key).
fn init_error_summary(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("errorMessage"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut summary = lines.next().unwrap_or("(empty message)").to_string();
    if let Some(key) = lines.find(|l| l.starts_with("unknown field")) {
        summary = format!("{summary}: {key}");
    }
    summary
}

fn check_reply(kind: &Check, ev: &[u8], reply: &Reply) -> Result<(), String> {
    if reply.status != "200 OK" {
        return Err(format!("Invoke answered {}: {}", reply.status, snippet(&reply.body)));
    }
    if let Some(error_type) = &reply.function_error {
        let message = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| snippet(&reply.body));
        return Err(format!("function error {error_type}: {message}"));
    }
    check(kind, ev, &reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_checks() {
        let ev = event(7, 0);
        let v: Value = serde_json::from_slice(&ev).unwrap();
        assert_eq!(v["seq"], 7);
        let mut answer = v.clone();
        answer["echo"] = Value::Bool(true);
        assert!(check(&Check::Echo, &ev, answer.to_string().as_bytes()).is_ok());
        assert!(check(&Check::Echo, &ev, &ev).is_err());
        assert!(check(&Check::Echo, &event(8, 0), answer.to_string().as_bytes()).is_err());
        let big = event(1, 5_000_000);
        assert_eq!(big.len(), 5_000_000);
        assert!(serde_json::from_slice::<Value>(&big).is_ok());
        assert!(check(&Check::Same, &big, &big).is_ok());
        let two_lines = Check::Text("one\ntwo\n".into());
        assert!(check(&two_lines, &ev, b"one\ntwo\n").is_ok());
        assert!(check(&two_lines, &ev, b"one\n").is_err());
    }

    #[test]
    fn a_report_is_taken_out_before_the_check() {
        let ev = event(3, 0);
        let mut answer: Value = serde_json::from_slice(&ev).unwrap();
        answer["echo"] = Value::Bool(true);
        answer["report"] = serde_json::json!({"minflt": 448});
        let mut body = serde_json::to_vec(&answer).unwrap();
        let report = take_report("report", &mut body).unwrap();
        assert_eq!(report["minflt"], 448);
        assert!(check(&Check::Echo, &ev, &body).is_ok());
        let mut plain = ev.clone();
        assert!(take_report("report", &mut plain).is_none());
        assert_eq!(plain, ev);
    }

    #[test]
    fn init_error_summary_names_the_key() {
        let body = br#"{"errorType":"Runtime.InvalidConfig","errorMessage":"invalid config: x.toml: TOML parse error at line 4\n  |\nunknown field `protocol`, expected `command`"}"#;
        assert_eq!(
            init_error_summary(body),
            "invalid config: x.toml: TOML parse error at line 4: unknown field `protocol`, expected `command`"
        );
    }
}
