//! bench-driver: measures Lambda runtimes through a loopback Runtime API.
//!
//! ```text
//! bench-driver plan PLAN.json    run every row and extra of a plan (bench/run writes one; the
//!                                rows of a language take turns, 10 invocations at a time),
//!                                print one table, write the plan's "out" JSON
//! bench-driver row SPEC          run one row (a JSON file or inline JSON), print its numbers
//! bench-driver profile PLAN.json run rows under strace (and perf stat) and print where their
//!                                warm path goes, per invocation (bench/run --profile)
//! ```
//!
//! A row spec: `{"lang", "name", "kind": "floor"|"runtime"|"serve", "n", "warmup", "gap_ms",
//! "check": "echo"|"same"|"text" (with "expect"), "event_bytes", "role": "floor"|"old"|"ric"|"",
//! "response_mode": "buffered"|"streaming", "report_key", "attempts": [{"argv": [...], "env": {...},
//! "cwd": "...", "note": "..."}]}`. A runtime row gets AWS_LAMBDA_RUNTIME_API on top of `env`;
//! the first attempt that reaches /next is measured. A row with a `response_mode` must post
//! its answers that way, and also gets the times of their first and last byte at the server.
//! A serve row starts `bootstrap serve --port 0` (its first attempt) and invokes it directly.
//! A row with a `report_key` takes that object (numbers the handler reports) out of each
//! answer before checking it, and keeps the numbers. Every runtime row's descendants (its
//! handler processes) are read from /proc while the row is idle, once per turn.

mod client;
mod http;
mod process;
mod profile;
mod rows;
mod server;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use rows::{Outcome, RowSpec};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, plan] if cmd == "plan" => run_plan(Path::new(plan)),
        [cmd, spec] if cmd == "row" => run_one(spec),
        [cmd, plan] if cmd == "profile" => profile::run(Path::new(plan)),
        _ => Err("usage: bench-driver plan PLAN.json | bench-driver row SPEC.json|'{...}' \
                      | bench-driver profile PLAN.json"
            .to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-driver: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The figures of one row, as shown in the table.
struct Figures {
    n_done: usize,
    per_s: Option<f64>,
    p50: Option<Duration>,
    p99: Option<Duration>,
    min: Option<Duration>,
    max: Option<Duration>,
}

/// Median, min and max of unsorted values.
struct Spread {
    p50: Option<Duration>,
    min: Option<Duration>,
    max: Option<Duration>,
}

fn spread(values: &[Duration]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort();
    Spread {
        p50: percentile(&sorted, 0.5),
        min: sorted.first().copied(),
        max: sorted.last().copied(),
    }
}

fn median_f64(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (0.5 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// `{"p50", "min", "max", "n"}` of unsorted numbers (p50 nearest rank).
fn spread_f64(values: &[f64]) -> Value {
    let min = values.iter().copied().reduce(f64::min);
    let max = values.iter().copied().reduce(f64::max);
    json!({ "p50": median_f64(values), "min": min, "max": max, "n": values.len() })
}

fn spread_u64(values: &[u64]) -> Value {
    spread_f64(&values.iter().map(|&v| v as f64).collect::<Vec<_>>())
}

fn mb(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

/// The runtime's descendants as read while the row was idle (see `rows::Active::sample_tree`).
fn handlers_mem_json(m: &rows::Measured) -> Option<Value> {
    let peak = m.readings.tree_peak.as_ref()?;
    let forked: Vec<u32> = peak.forked_children().iter().map(|p| p.pid).collect();
    let procs: Vec<Value> = peak
        .procs
        .iter()
        .map(|p| {
            let role = if p.warden {
                "copy of the runtime's executable (warden)"
            } else if forked.contains(&p.pid) {
                "forked child"
            } else {
                "runner"
            };
            json!({
                "role": role,
                "rss_mb": mb(p.rss_kib),
                "pss_mb": p.pss_kib.map(mb),
                "private_dirty_mb": p.private_dirty_kib.map(mb),
            })
        })
        .collect();
    Some(json!({
        "samples": m.readings.tree_samples,
        "samples_not_idle": m.readings.tree_unsettled,
        "peak_pss_mb": mb(peak.pss_kib()),
        "pss_complete": peak.pss_complete(),
        "peak_rss_mb": mb(m.readings.tree_rss_peak_kib),
        "wardens_pss_mb": mb(peak.wardens_pss_kib()),
        "processes_at_peak": procs,
    }))
}

/// Notes under the table: a row's failures (the first one quoted) and an early stop.
fn note_failures(notes: &mut Vec<String>, who: &str, m: &rows::Measured, n: usize, strip: &str) {
    if let Some(why) = &m.first_failure {
        notes.push(format!(
            "{who}: {} failures, the first: {}",
            m.failures,
            why.replace(strip, "")
        ));
    }
    if let Some(why) = &m.cut_short {
        notes.push(format!("{who}: stopped after {} of {n}: {why}", m.latencies.len()));
    }
}

fn figures(row: &RowSpec, m: &rows::Measured) -> Figures {
    let mut sorted = m.latencies.clone();
    sorted.sort();
    let secs = m.elapsed.as_secs_f64();
    // With a gap between invocations the rate measures the gap, not the runtime.
    let per_s =
        (row.gap_ms == 0 && secs > 0.0 && !sorted.is_empty()).then(|| sorted.len() as f64 / secs);
    Figures {
        n_done: sorted.len(),
        per_s,
        p50: percentile(&sorted, 0.5),
        p99: percentile(&sorted, 0.99),
        min: sorted.first().copied(),
        max: sorted.last().copied(),
    }
}

/// The result of one row as JSON (ratios are added by the plan).
fn row_json(row: &RowSpec, outcome: &Outcome, strip: &str) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("lang".into(), json!(row.lang));
    o.insert("row".into(), json!(row.name));
    o.insert("n".into(), json!(row.n));
    if row.gap_ms > 0 {
        o.insert("gap_ms".into(), json!(row.gap_ms));
    }
    match outcome {
        Outcome::NotAvailable(why) => {
            o.insert("status".into(), json!("n/a"));
            o.insert("reason".into(), json!(why.replace(strip, "")));
        }
        Outcome::Ran(m) => {
            let f = figures(row, m);
            o.insert("status".into(), json!(if m.all_failed() { "failed" } else { "ok" }));
            o.insert("n_measured".into(), json!(f.n_done));
            o.insert("invocations_per_s".into(), json!(f.per_s.map(|x| round(x, 1))));
            o.insert("p50_ms".into(), json!(f.p50.map(|d| round(ms(d), 3))));
            o.insert("p99_ms".into(), json!(f.p99.map(|d| round(ms(d), 3))));
            o.insert("min_ms".into(), json!(f.min.map(|d| round(ms(d), 3))));
            o.insert("max_ms".into(), json!(f.max.map(|d| round(ms(d), 3))));
            o.insert(
                "peak_rss_mb".into(),
                json!(m.peak_rss_kib.map(|k| round(k as f64 / 1024.0, 1))),
            );
            if let Some(mem) = handlers_mem_json(m) {
                o.insert("handlers_mem".into(), mem);
            }
            if !m.readings.child_private_dirty_kib.is_empty() {
                let s = spread_u64(&m.readings.child_private_dirty_kib);
                o.insert("forked_child_private_dirty_kib".into(), s);
            }
            if !m.readings.reports.is_empty() {
                let reports: Map<String, Value> =
                    m.readings.reports.iter().map(|(k, v)| (k.clone(), spread_f64(v))).collect();
                o.insert("reported".into(), Value::Object(reports));
            }
            o.insert("cold_start_ms".into(), json!(m.cold_start.map(|d| round(ms(d), 2))));
            o.insert("failures".into(), json!(m.failures));
            if let Some(why) = &m.first_failure {
                o.insert("first_failure".into(), json!(why.replace(strip, "")));
            }
            if let Some(note) = &m.note {
                o.insert("note".into(), json!(note.replace(strip, "")));
            }
            if let Some(why) = &m.cut_short {
                o.insert("cut_short".into(), json!(why));
            }
            if let Some(mode) = row.response_mode {
                let mode = match mode {
                    rows::ResponseMode::Buffered => "buffered",
                    rows::ResponseMode::Streaming => "streaming",
                };
                o.insert("response_mode".into(), json!(mode));
                for (what, values) in [("first_byte", &m.first_byte), ("last_byte", &m.last_byte)] {
                    let s = spread(values);
                    let f = |d: Option<Duration>| json!(d.map(|d| round(ms(d), 3)));
                    o.insert(format!("{what}_p50_ms"), f(s.p50));
                    o.insert(format!("{what}_min_ms"), f(s.min));
                    o.insert(format!("{what}_max_ms"), f(s.max));
                }
            }
        }
    }
    o
}

fn run_one(spec: &str) -> Result<(), String> {
    let v: Value = if spec.trim_start().starts_with('{') {
        serde_json::from_str(spec).map_err(|e| e.to_string())?
    } else {
        read_json(Path::new(spec))?
    };
    let row = RowSpec::from_json(&v)?;
    let log_dir = std::env::temp_dir();
    let outcome = rows::run(&row, &log_dir);
    let out = Value::Object(row_json(&row, &outcome, ""));
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

struct Done {
    row: RowSpec,
    outcome: Outcome,
}

impl Done {
    fn per_s(&self) -> Option<f64> {
        match &self.outcome {
            Outcome::Ran(m) if !m.all_failed() => figures(&self.row, m).per_s,
            _ => None,
        }
    }
}

/// Throughput of this row over that of the row with `role` in the same language.
fn ratio(done: &[Done], i: usize, role: &str) -> Option<f64> {
    let base = done.iter().find(|d| d.row.lang == done[i].row.lang && d.row.role == role)?;
    Some(done[i].per_s()? / base.per_s()?)
}

fn run_plan(path: &Path) -> Result<(), String> {
    let plan = read_json(path)?;
    let get_str = |k: &str| plan.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let repo = get_str("repo");
    let strip = if repo.is_empty() { String::from("\u{0}") } else { format!("{repo}/") };
    let log_dir = PathBuf::from(get_str("log_dir"));
    fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let out_path = PathBuf::from(get_str("out"));

    let specs = plan
        .get("rows")
        .and_then(Value::as_array)
        .ok_or("plan without \"rows\"")?
        .iter()
        .map(RowSpec::from_json)
        .collect::<Result<Vec<_>, _>>()?;

    let done = run_interleaved(specs, &log_dir, &strip);

    let extras = plan.get("extras").cloned().unwrap_or(Value::Null);
    let streaming = extra_rows(&extras, "streaming", "streaming", &log_dir, &strip)?;
    let large_init = extra_rows(&extras, "large_init", "large init", &log_dir, &strip)?;
    let cold = cold_starts(&extras, &log_dir);
    let big = match extras.get("big_event") {
        Some(v) => {
            let row = RowSpec::from_json(v)?;
            eprintln!("bench: {} byte event round trip", row.event_bytes);
            let outcome = rows::run(&row, &log_dir);
            Some(Done { row, outcome })
        }
        None => None,
    };
    let binaries: Vec<(String, Option<u64>)> = extras
        .get("binaries")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|b| {
                    let target = b.get("target").and_then(Value::as_str).unwrap_or("?").to_string();
                    let size = b
                        .get("path")
                        .and_then(Value::as_str)
                        .and_then(|p| fs::metadata(p).ok())
                        .map(|m| m.len());
                    (target, size)
                })
                .collect()
        })
        .unwrap_or_default();

    let elapsed = plan.get("started_at").and_then(Value::as_f64).map(|t0| {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() - t0
    });

    // JSON.
    let mut rows_json = Vec::new();
    for (i, d) in done.iter().enumerate() {
        let mut o = row_json(&d.row, &d.outcome, &strip);
        if let Outcome::Ran(_) = d.outcome {
            for (key, role) in [("x_floor", "floor"), ("x_old", "old"), ("x_ric", "ric")] {
                if done.iter().any(|b| b.row.lang == d.row.lang && b.row.role == role) {
                    o.insert(key.into(), json!(ratio(&done, i, role).map(|r| round(r, 3))));
                }
            }
        }
        rows_json.push(Value::Object(o));
    }
    let mut extras_json = Map::new();
    extras_json.insert("cold_start".into(), cold.to_json());
    if let Some(big) = &big {
        extras_json
            .insert("big_event".into(), Value::Object(row_json(&big.row, &big.outcome, &strip)));
        extras_json["big_event"]["event_bytes"] = json!(big.row.event_bytes);
    }
    if let Some((what, done)) = &streaming {
        let rows: Vec<Value> =
            done.iter().map(|d| Value::Object(row_json(&d.row, &d.outcome, &strip))).collect();
        extras_json.insert("streaming".into(), json!({ "what": what, "rows": rows }));
    }
    if let Some((what, done)) = &large_init {
        let rows: Vec<Value> =
            done.iter().map(|d| Value::Object(row_json(&d.row, &d.outcome, &strip))).collect();
        extras_json.insert("large_init".into(), json!({ "what": what, "rows": rows }));
    }
    let bins: Map<String, Value> = binaries.iter().map(|(t, s)| (t.clone(), json!(s))).collect();
    extras_json.insert("static_binary_bytes".into(), Value::Object(bins));
    let result = json!({
        "date": get_str("date"),
        "mode": get_str("mode"),
        "elapsed_s": elapsed.map(|e| round(e, 1)),
        "build_s": plan.get("build_s").cloned().unwrap_or(Value::Null),
        "machine": plan.get("machine").cloned().unwrap_or(Value::Null),
        "rows": rows_json,
        "extras": extras_json,
    });
    if !out_path.as_os_str().is_empty() {
        if let Some(dir) = out_path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let text = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())? + "\n";
        fs::write(&out_path, text)
            .map_err(|e| format!("cannot write {}: {e}", out_path.display()))?;
    }

    // The table.
    let extra = Extras {
        cold: &cold,
        big: big.as_ref(),
        streaming: streaming.as_ref(),
        large_init: large_init.as_ref(),
        binaries: &binaries,
    };
    print!("{}", table(&plan, &done, &extra, elapsed, &strip));
    Ok(())
}

/// Measured invocations per turn when the rows of a language take turns.
pub(crate) const BLOCK: usize = 10;

/// Run the rows language by language. The rows of one language are all started (and warmed
/// up) first, then take turns, BLOCK invocations each, until each has its N: so they share
/// whatever else the machine is doing at the time, and their ratios mean something.
/// The block of extra rows under `key` in the plan's extras, if there is one: its "what" and
/// its rows, run side by side.
fn extra_rows(
    extras: &Value,
    key: &str,
    label: &str,
    log_dir: &Path,
    strip: &str,
) -> Result<Option<(String, Vec<Done>)>, String> {
    let Some(block) = extras.get(key) else { return Ok(None) };
    let specs = block
        .get("rows")
        .and_then(Value::as_array)
        .ok_or(format!("\"{key}\" without \"rows\""))?
        .iter()
        .map(RowSpec::from_json)
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!("bench: {label}");
    let what = block.get("what").and_then(Value::as_str).unwrap_or("").to_string();
    Ok(Some((what, run_interleaved(specs, log_dir, strip))))
}

fn run_interleaved(specs: Vec<RowSpec>, log_dir: &Path, strip: &str) -> Vec<Done> {
    let mut langs: Vec<&str> = Vec::new();
    for row in &specs {
        if !langs.contains(&row.lang.as_str()) {
            langs.push(&row.lang);
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = specs.iter().map(|_| None).collect();
    for lang in langs {
        let t = Instant::now();
        let mut active = Vec::new();
        for (i, row) in specs.iter().enumerate().filter(|(_, r)| r.lang == lang) {
            let a = rows::Active::prepare(row, log_dir);
            eprintln!(
                "bench: {:<7} {:<30} {}",
                row.lang,
                row.name,
                if a.usable() { "started" } else { "cannot run" }
            );
            active.push((i, a));
        }
        // Each round starts one row later, so that no row always follows the same other row.
        for start in 0.. {
            let mut turns = 0;
            let k = active.len().max(1);
            for j in 0..active.len() {
                let (i, a) = &mut active[(j + start) % k];
                let left = specs[*i].n.saturating_sub(a.measured());
                if a.usable() && left > 0 {
                    // The row has been idle since its last turn: read its handler processes.
                    a.sample_tree(rows::TREE_WAIT);
                    a.block(left.min(BLOCK));
                    turns += 1;
                }
            }
            if turns == 0 {
                break;
            }
        }
        for (i, a) in active {
            let outcome = a.finish();
            let row = &specs[i];
            match &outcome {
                Outcome::Ran(m) => eprintln!(
                    "bench: {:<7} {:<30} N={:<4} {} measured, {} failures",
                    row.lang,
                    row.name,
                    row.n,
                    m.latencies.len(),
                    m.failures
                ),
                Outcome::NotAvailable(why) => eprintln!(
                    "bench: {:<7} {:<30} n/a: {}",
                    row.lang,
                    row.name,
                    why.replace(strip, "")
                ),
            }
            outcomes[i] = Some(outcome);
        }
        eprintln!("bench: {lang}: {:.1} s", t.elapsed().as_secs_f64());
    }
    specs
        .into_iter()
        .zip(outcomes)
        .map(|(row, outcome)| Done { row, outcome: outcome.expect("every row ran") })
        .collect()
}

/// The extra cold-start measurement: spawn to first /next, `runs` times.
struct Cold {
    label: String,
    runs: usize,
    starts: Vec<Duration>,
    failure: Option<String>,
    note: Option<String>,
}

impl Cold {
    fn to_json(&self) -> Value {
        let mut sorted = self.starts.clone();
        sorted.sort();
        let f = |q| percentile(&sorted, q).map(|d| round(ms(d), 2));
        json!({
            "what": self.label,
            "runs": self.runs,
            "measured": sorted.len(),
            "median_ms": f(0.5),
            "min_ms": sorted.first().map(|d| round(ms(*d), 2)),
            "max_ms": sorted.last().map(|d| round(ms(*d), 2)),
            "failure": self.failure,
        })
    }
}

fn cold_starts(extras: &Value, log_dir: &Path) -> Cold {
    let mut cold =
        Cold { label: String::new(), runs: 0, starts: Vec::new(), failure: None, note: None };
    let Some(spec) = extras.get("cold_start") else {
        cold.failure = Some("not in the plan".into());
        return cold;
    };
    cold.label = spec.get("what").and_then(Value::as_str).unwrap_or("").to_string();
    cold.runs = spec.get("runs").and_then(Value::as_u64).unwrap_or(20) as usize;
    let attempts = match rows::parse_attempts(spec) {
        Ok(a) => a,
        Err(e) => {
            cold.failure = Some(e);
            return cold;
        }
    };
    eprintln!("bench: cold start x{}", cold.runs);
    let log = log_dir.join("cold-start.log");
    let mut first_ok = None;
    for _ in 0..cold.runs {
        let candidates: Vec<usize> = match first_ok {
            Some(i) => vec![i],
            None => (0..attempts.len()).collect(),
        };
        let mut started = None;
        for i in candidates {
            match rows::start(&attempts[i], &log) {
                Ok(s) => {
                    if first_ok.is_none() && i > 0 {
                        cold.note = attempts[i].note.clone();
                    }
                    first_ok = Some(i);
                    started = Some(s);
                    break;
                }
                Err(why) => cold.failure = Some(why),
            }
        }
        let Some(mut s) = started else { break };
        cold.starts.push(s.cold_start);
        s.runtime.stop(Duration::from_secs(2));
        s.server.stop();
    }
    if !cold.starts.is_empty() {
        cold.failure = None;
    }
    cold
}

fn fmt_ms(d: Option<Duration>) -> String {
    match d {
        Some(d) if ms(d) < 10.0 => format!("{:.2}", ms(d)),
        Some(d) => format!("{:.1}", ms(d)),
        None => "-".into(),
    }
}

fn fmt_opt(x: Option<f64>, places: usize) -> String {
    x.map(|x| format!("{x:.places$}")).unwrap_or_else(|| "-".into())
}

/// Two decimals, three below 0.1 so that small ratios keep a figure.
fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        Some(x) if x < 0.1 => format!("{x:.3}"),
        x => fmt_opt(x, 2),
    }
}

/// The streaming rows: when the first and the last byte of the answer reached the server,
/// and the whole answer the client.
fn streaming_block(
    t: &mut String,
    what: &str,
    done: &[Done],
    notes: &mut Vec<String>,
    strip: &str,
) {
    let _ = writeln!(t);
    let _ = writeln!(t, "Streaming: {what}");
    let header = format!(
        "{:<7} {:<30} {:>4} {:>13} {:>14} {:>11} {:>5}",
        "lang", "row", "N", "1st byte ms", "last byte ms", "answer ms", "fail"
    );
    let _ = writeln!(t, "{header}");
    let _ = writeln!(t, "{}", "-".repeat(header.len()));
    for d in done {
        let lead = format!("{:<7} {:<30} {:>4}", d.row.lang, d.row.name, d.row.n);
        let who = format!("streaming, {}", d.row.name);
        match &d.outcome {
            Outcome::NotAvailable(why) => {
                let _ = writeln!(t, "{lead}   n/a ({})", why.replace(strip, ""));
            }
            Outcome::Ran(m) => {
                let _ = writeln!(
                    t,
                    "{lead} {:>13} {:>14} {:>11} {:>5}",
                    fmt_ms(spread(&m.first_byte).p50),
                    fmt_ms(spread(&m.last_byte).p50),
                    fmt_ms(figures(&d.row, m).p50),
                    m.failures
                );
                note_failures(notes, &who, m, d.row.n, strip);
            }
        }
    }
    for line in [
        "p50s from sending the Invoke. 1st byte: the answer's first chunk reaches the server (buffered:",
        "the head of its /response post); last byte: the end of that post; answer: the whole answer",
        "reaches the client.",
    ] {
        let _ = writeln!(t, "{line}");
    }
}

/// The large-init rows: latency, the handler processes' memory, and what a process dirtied.
fn large_init_block(
    t: &mut String,
    what: &str,
    done: &[Done],
    notes: &mut Vec<String>,
    strip: &str,
) {
    let _ = writeln!(t);
    let _ = writeln!(t, "Large init: {what}");
    let header = format!(
        "{:<7} {:<30} {:>4} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8} {:>9} {:>4}",
        "lang",
        "row",
        "N",
        "inv/s",
        "p50 ms",
        "p99 ms",
        "hnd MB",
        "hnd RSS",
        "faults/ev",
        "= MB/ev",
        "child KiB",
        "fail"
    );
    let _ = writeln!(t, "{header}");
    let _ = writeln!(t, "{}", "-".repeat(header.len()));
    for d in done {
        let lead = format!("{:<7} {:<30} {:>4}", d.row.lang, d.row.name, d.row.n);
        let who = format!("large init, {}", d.row.name);
        match &d.outcome {
            Outcome::NotAvailable(why) => {
                let _ = writeln!(t, "{lead}   n/a ({})", why.replace(strip, ""));
            }
            Outcome::Ran(m) if m.all_failed() => {
                let why = m.first_failure.clone().unwrap_or_default().replace(strip, "");
                let _ = writeln!(
                    t,
                    "{lead}   FAILED (all {} invocations; the first: {why})",
                    m.invocations
                );
            }
            Outcome::Ran(m) => {
                let f = figures(&d.row, m);
                let hnd = m.readings.tree_peak.as_ref().map(|p| p.pss_kib() as f64 / 1024.0);
                let hnd_rss = m
                    .readings
                    .tree_peak
                    .as_ref()
                    .map(|_| m.readings.tree_rss_peak_kib as f64 / 1024.0);
                let faults = m.readings.reports.get("minflt").and_then(|v| median_f64(v));
                let child: Vec<f64> =
                    m.readings.child_private_dirty_kib.iter().map(|&k| k as f64).collect();
                let _ = writeln!(
                    t,
                    "{lead} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8} {:>9} {:>4}",
                    fmt_opt(f.per_s, 1),
                    fmt_ms(f.p50),
                    fmt_ms(f.p99),
                    fmt_opt(hnd, 1),
                    fmt_opt(hnd_rss, 1),
                    fmt_opt(faults, 0),
                    fmt_opt(faults.map(|n| n * 4.0 / 1024.0), 1),
                    fmt_opt(median_f64(&child), 0),
                    m.failures
                );
                note_failures(notes, &who, m, d.row.n, strip);
            }
        }
    }
    for line in [
        "hnd MB: Pss of the handler processes while idle (the loaded process, or fork's parent +",
        "waiting child); hnd RSS: their Rss summed (counts a page the child shares with its parent",
        "twice). faults/ev: median of the page faults the handler's process had taken when the handler",
        "returned (ru_minflt; a forked child counts from the fork: pages copied on write or touched",
        "fresh), x 4 KiB = MB/ev. child KiB: median Private_Dirty of the forked child waiting for its",
        "event, read by the driver (what the fork and the child's start dirtied before the event).",
    ] {
        let _ = writeln!(t, "{line}");
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the table shows below the rows.
struct Extras<'a> {
    cold: &'a Cold,
    big: Option<&'a Done>,
    /// What the streaming rows run, and how they did.
    streaming: Option<&'a (String, Vec<Done>)>,
    /// The large-init rows (exec per event against fork), and how they did.
    large_init: Option<&'a (String, Vec<Done>)>,
    binaries: &'a [(String, Option<u64>)],
}

fn table(plan: &Value, done: &[Done], extra: &Extras, elapsed: Option<f64>, strip: &str) -> String {
    let Extras { cold, big, streaming, large_init, binaries } = *extra;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let machine = plan.get("machine").cloned().unwrap_or(Value::Null);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "bootstrap benchmark, {} mode, {}: {} cores, Linux {}",
        s(plan, "mode"),
        s(plan, "date"),
        s(&machine, "nproc"),
        s(&machine, "kernel")
    );
    let _ = writeln!(
        t,
        "perl {}, python {}, ruby {}, node {}, bash {}, awslambdaric {}",
        s(&machine, "perl"),
        s(&machine, "python"),
        s(&machine, "ruby"),
        s(&machine, "node"),
        s(&machine, "bash"),
        s(&machine, "awslambdaric")
    );
    let _ = writeln!(t);
    let header = format!(
        "{:<7} {:<30} {:>4} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>4}",
        "lang",
        "row",
        "N",
        "inv/s",
        "p50 ms",
        "p99 ms",
        "RSS MB",
        "hnd MB",
        "x floor",
        "x old",
        "x ric",
        "fail"
    );
    let _ = writeln!(t, "{header}");
    let _ = writeln!(t, "{}", "-".repeat(header.len()));
    let mut notes = Vec::new();
    let mut last_lang = "";
    for (i, d) in done.iter().enumerate() {
        if !last_lang.is_empty() && last_lang != d.row.lang {
            let _ = writeln!(t);
        }
        last_lang = &d.row.lang;
        let lead = format!("{:<7} {:<30} {:>4}", d.row.lang, d.row.name, d.row.n);
        match &d.outcome {
            Outcome::NotAvailable(why) => {
                let _ = writeln!(t, "{lead}   n/a ({})", why.replace(strip, ""));
            }
            Outcome::Ran(m) if m.all_failed() => {
                let why = m.first_failure.clone().unwrap_or_default().replace(strip, "");
                let _ = writeln!(
                    t,
                    "{lead}   FAILED (all {} invocations; the first: {why})",
                    m.invocations
                );
            }
            Outcome::Ran(m) => {
                let f = figures(&d.row, m);
                let has = |role: &str| {
                    done.iter().any(|b| b.row.lang == d.row.lang && b.row.role == role)
                };
                let r = |role: &str| {
                    if has(role) {
                        fmt_ratio(ratio(done, i, role))
                    } else {
                        String::new()
                    }
                };
                let rss = m.peak_rss_kib.map(|k| k as f64 / 1024.0);
                let hnd = m.readings.tree_peak.as_ref().map(|p| p.pss_kib() as f64 / 1024.0);
                let _ = writeln!(
                    t,
                    "{lead} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>4}",
                    fmt_opt(f.per_s, 1),
                    fmt_ms(f.p50),
                    fmt_ms(f.p99),
                    fmt_opt(rss, 1),
                    fmt_opt(hnd, 1),
                    r("floor"),
                    r("old"),
                    r("ric"),
                    m.failures
                );
                let who = format!("{} {}", d.row.lang, d.row.name);
                if let Some(note) = &m.note {
                    notes.push(format!("{who}: {}", note.replace(strip, "")));
                }
                note_failures(&mut notes, &who, m, d.row.n, strip);
            }
        }
    }

    if let Some((what, done)) = streaming {
        streaming_block(&mut t, what, done, &mut notes, strip);
    }
    if let Some((what, done)) = large_init {
        large_init_block(&mut t, what, done, &mut notes, strip);
    }

    let _ = writeln!(t);
    let _ = writeln!(t, "Extra measurements");
    let mut cold_sorted = cold.starts.clone();
    cold_sorted.sort();
    match (&cold.failure, percentile(&cold_sorted, 0.5)) {
        (None, Some(median)) => {
            let _ = writeln!(
                t,
                "  cold start, {} (spawn -> first /next): {} ms median of {} (min {}, max {})",
                cold.label,
                fmt_ms(Some(median)),
                cold_sorted.len(),
                fmt_ms(cold_sorted.first().copied()),
                fmt_ms(cold_sorted.last().copied())
            );
        }
        (failure, _) => {
            let _ = writeln!(
                t,
                "  cold start, {}: n/a ({})",
                cold.label,
                failure.clone().unwrap_or_default().replace(strip, "")
            );
        }
    }
    if let Some(note) = &cold.note {
        notes.push(format!("cold start: {note}"));
    }
    for (target, size) in binaries {
        match size {
            Some(b) => {
                let _ = writeln!(
                    t,
                    "  static binary {target}: {} bytes ({:.2} MiB)",
                    thousands(*b),
                    *b as f64 / 1048576.0
                );
            }
            None => {
                let _ = writeln!(t, "  static binary {target}: n/a (not built)");
            }
        }
    }
    if let Some(big) = big {
        let what = format!(
            "{}-byte event round trip, {}",
            thousands(big.row.event_bytes as u64),
            big.row.name
        );
        match &big.outcome {
            Outcome::Ran(m) => {
                let f = figures(&big.row, m);
                let _ = writeln!(
                    t,
                    "  {what}: {} ms median of {} (min {}, max {}), {} failures",
                    fmt_ms(f.p50),
                    f.n_done,
                    fmt_ms(f.min),
                    fmt_ms(f.max),
                    m.failures
                );
                if let Some(why) = &m.first_failure {
                    notes.push(format!("{what}: the first failure: {}", why.replace(strip, "")));
                }
                if let Some(note) = &m.note {
                    notes.push(format!("{what}: {}", note.replace(strip, "")));
                }
            }
            Outcome::NotAvailable(why) => {
                let _ = writeln!(t, "  {what}: n/a ({})", why.replace(strip, ""));
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "Notes");
        for note in notes {
            let _ = writeln!(t, "  {note}");
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Latency: Invoke sent -> answer received (client -> server -> runtime -> server -> client);"
    );
    let _ = writeln!(
        t,
        "floor: the runner run directly, spawn -> exit. inv/s: N / wall time of the row's invocations."
    );
    let _ = writeln!(t, "p50, p99: nearest rank. x floor/old/ric: inv/s over that row's inv/s. RSS: VmHWM of the runtime process.");
    let _ = writeln!(
        t,
        "hnd MB: peak over the row's idle moments of the Pss summed over the runtime's descendants (its handler"
    );
    let _ = writeln!(
        t,
        "processes, e.g. fork's parent + waiting child; a page shared by k processes counts 1/k in each)."
    );
    if let Some(e) = elapsed {
        let builds = plan.get("build_s").and_then(Value::as_f64).unwrap_or(0.0);
        let _ = writeln!(t, "Elapsed: {e:.0} s, of which builds and setup {builds:.0} s.");
    }
    t
}
