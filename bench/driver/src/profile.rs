//! `bench-driver profile`: where a runtime's warm path goes, per invocation.
//!
//! Every row of the plan is a runtime row: started, warmed up, then N invocations one after
//! another, as in the benchmark. Each row runs
//!
//! - untraced, side by side with the other rows (turns of `BLOCK` invocations, as the benchmark
//!   does): the latency, and the context switches (`voluntary_ctxt_switches` and
//!   `nonvoluntary_ctxt_switches` of /proc/<pid>/task/<tid>/status) and CPU time (`schedstat`)
//!   of every thread of every process of the runtime's tree, read after the warm-up and after
//!   the N invocations. A thread that starts and ends in between is not seen;
//! - under `strace -f -c -o FILE`: the tree's system calls, by name. strace counts from start to
//!   exit, so the row runs twice, with the warm-up alone and with the N invocations after it,
//!   and the difference is divided by N;
//! - under `perf stat` (when the plan names perf), the same way: the whole tree, short-lived
//!   threads included.
//!
//! The plan: `{"date", "repo", "out", "work", "log_dir", "n", "machine", "strace": path or "",
//! "strace_version", "perf": path or "", "rows": [row spec]}`. The text goes to `out` and to
//! stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process;
use crate::rows::{Active, Outcome, RowSpec};
use crate::{ms, percentile, read_json, BLOCK};

/// perf's events; hardware ones (cycles) are often missing in a VM, and then left out.
const PERF_EVENTS: &str =
    "task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions";
/// How long a traced runtime gets, after SIGTERM, to exit and let its tracer write the summary.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// The system calls that start a thread or a process.
const STARTS: [&str; 4] = ["clone", "clone3", "fork", "vfork"];

pub fn run(plan_path: &Path) -> Result<(), String> {
    let plan = read_json(plan_path)?;
    let get_str = |k: &str| plan.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let repo = get_str("repo");
    let strip =
        |s: &str| if repo.is_empty() { s.to_string() } else { s.replace(&format!("{repo}/"), "") };
    let log_dir = PathBuf::from(get_str("log_dir"));
    let work = PathBuf::from(get_str("work"));
    for dir in [&log_dir, &work] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let n = plan.get("n").and_then(Value::as_u64).unwrap_or(2000) as usize;
    let strace = get_str("strace");
    let perf = get_str("perf");
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let rows = plan
        .get("rows")
        .and_then(Value::as_array)
        .ok_or("plan without \"rows\"")?
        .iter()
        .map(|v| RowSpec::from_json(v).map(|row| RowSpec { n, ..row }))
        .collect::<Result<Vec<_>, _>>()?;

    eprintln!("bench: profile: untraced, side by side, N = {n}");
    let untraced = untraced(&rows, &log_dir);
    let mut profiles = Vec::new();
    for (row, untraced) in rows.into_iter().zip(untraced) {
        let say = |what: &str| eprintln!("bench: profile {:<7} {:<16} {what}", row.lang, row.name);
        let syscalls = if strace.is_empty() {
            Err("strace is not installed".to_string())
        } else {
            say("strace -f -c: warm-up alone, then with N");
            let out = work.join(format!("{}.strace", slug(&row)));
            let wrapper = [&strace, "-f", "-c", "-o", &out.to_string_lossy()].map(str::to_string);
            wrapped(&row, &wrapper, &out, &log_dir)
                .map(|(base, full)| per_invocation(&parse_strace(&base), &parse_strace(&full), n))
        };
        let perf_stat = (!perf.is_empty()).then(|| {
            say("perf stat: warm-up alone, then with N");
            let out = work.join(format!("{}.perf", slug(&row)));
            let wrapper =
                [&perf, "stat", "-x", ",", "-e", PERF_EVENTS, "-o", &out.to_string_lossy(), "--"]
                    .map(str::to_string);
            wrapped(&row, &wrapper, &out, &log_dir)
                .map(|(base, full)| per_invocation(&parse_perf(&base), &parse_perf(&full), n))
        });
        profiles.push(Profile { row, untraced, syscalls, perf_stat });
    }

    let text = strip(&report(&plan, n, load.trim(), &profiles));
    let out = PathBuf::from(get_str("out"));
    if !out.as_os_str().is_empty() {
        if let Some(dir) = out.parent() {
            let _ = fs::create_dir_all(dir);
        }
        fs::write(&out, &text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    print!("{text}");
    Ok(())
}

struct Profile {
    row: RowSpec,
    untraced: Result<Untraced, String>,
    /// Per invocation: calls and errors, by system call.
    syscalls: Result<Counts, String>,
    /// Per invocation, by perf event; `None` without perf.
    perf_stat: Option<Result<Counts, String>>,
}

impl Profile {
    fn untraced(&self) -> Option<&Untraced> {
        self.untraced.as_ref().ok()
    }

    fn syscalls(&self) -> Option<&Counts> {
        self.syscalls.as_ref().ok()
    }

    /// A perf event per invocation, if perf counted it.
    fn perf(&self, event: &str) -> Option<f64> {
        self.perf_stat.as_ref()?.as_ref().ok()?.get(event).map(|v| v.0)
    }
}

/// Figures by name: (calls, errors) of a system call, (value, 0) of a perf event.
type Counts = BTreeMap<String, (f64, f64)>;

fn slug(row: &RowSpec) -> String {
    format!("{}-{}", row.lang, row.name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect()
}

// --- Untraced: latency, and context switches and CPU time from /proc -----------------------

/// One thread of the runtime's tree: its counters at one moment, or over the run.
#[derive(Debug, Clone)]
struct Task {
    pid: u32,
    tid: u32,
    /// The comm of the process and of the thread.
    process: String,
    thread: String,
    voluntary: u64,
    involuntary: u64,
    /// Time on a CPU, from /proc/<pid>/task/<tid>/schedstat.
    cpu_ns: Option<u64>,
}

fn comm(path: &str) -> String {
    fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

/// Every thread of every process of the tree below (and including) `root`.
fn snapshot(root: u32) -> Vec<Task> {
    let mut tasks = Vec::new();
    for pid in process::tree(root) {
        let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        let mut tids: Vec<u32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        tids.sort_unstable();
        for tid in tids {
            let base = format!("/proc/{pid}/task/{tid}");
            let Ok(status) = fs::read_to_string(format!("{base}/status")) else { continue };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let cpu_ns = fs::read_to_string(format!("{base}/schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok());
            tasks.push(Task {
                pid,
                tid,
                process: comm(&format!("/proc/{pid}/comm")),
                thread: comm(&format!("{base}/comm")),
                voluntary: field("voluntary_ctxt_switches:"),
                involuntary: field("nonvoluntary_ctxt_switches:"),
                cpu_ns,
            });
        }
    }
    tasks
}

/// Each thread's counts from `before` to `after`; a thread that started in between counts
/// from zero. Also how many threads of `before` had ended.
fn difference(before: &[Task], after: &[Task]) -> (Vec<Task>, usize) {
    let tasks = after
        .iter()
        .map(|a| match before.iter().find(|b| b.pid == a.pid && b.tid == a.tid) {
            Some(b) => Task {
                voluntary: a.voluntary.saturating_sub(b.voluntary),
                involuntary: a.involuntary.saturating_sub(b.involuntary),
                cpu_ns: a.cpu_ns.zip(b.cpu_ns).map(|(a, b)| a.saturating_sub(b)),
                ..a.clone()
            },
            None => a.clone(),
        })
        .collect();
    let ended = before.iter().filter(|b| !after.iter().any(|a| a.tid == b.tid)).count();
    (tasks, ended)
}

struct Untraced {
    measured: usize,
    failures: usize,
    p50: Option<Duration>,
    /// Wall time of the N invocations (the other rows' turns left out).
    wall: Duration,
    /// Each thread's counts over the N invocations.
    tasks: Vec<Task>,
    /// Threads that ended during the N invocations: their counts are lost.
    ended: usize,
}

impl Untraced {
    fn per_invocation(&self, x: u64) -> f64 {
        x as f64 / self.measured.max(1) as f64
    }

    /// Voluntary and involuntary, per invocation.
    fn context_switches(&self) -> f64 {
        self.per_invocation(self.tasks.iter().map(|k| k.voluntary + k.involuntary).sum())
    }

    fn processes(&self) -> usize {
        self.tasks.iter().map(|k| k.pid).collect::<BTreeSet<_>>().len()
    }
}

/// All rows started and warmed up, then taking turns until each has its N.
fn untraced(rows: &[RowSpec], log_dir: &Path) -> Vec<Result<Untraced, String>> {
    let mut active: Vec<Active> = rows.iter().map(|row| Active::prepare(row, log_dir)).collect();
    let tree = |a: &Active| a.runtime_pid().map(snapshot).unwrap_or_default();
    let before: Vec<Vec<Task>> = active.iter().map(tree).collect();
    for start in 0.. {
        let mut turns = 0;
        let k = active.len().max(1);
        for j in 0..active.len() {
            let i = (j + start) % k;
            let left = rows[i].n.saturating_sub(active[i].measured());
            if active[i].usable() && left > 0 {
                active[i].block(left.min(BLOCK));
                turns += 1;
            }
        }
        if turns == 0 {
            break;
        }
    }
    let after: Vec<Vec<Task>> = active.iter().map(tree).collect();
    active
        .into_iter()
        .zip(before.iter().zip(&after))
        .map(|(a, (before, after))| {
            let m = match a.finish() {
                Outcome::NotAvailable(why) => return Err(why),
                Outcome::Ran(m) => m,
            };
            let (tasks, ended) = difference(before, after);
            let mut sorted = m.latencies.clone();
            sorted.sort();
            Ok(Untraced {
                measured: sorted.len(),
                failures: m.failures,
                p50: percentile(&sorted, 0.5),
                wall: m.elapsed,
                tasks,
                ended,
            })
        })
        .collect()
}

// --- Under a tracer: strace -c, perf stat --------------------------------------------------

/// Runs the row with `wrapper` before its argv, once with the warm-up alone and once with the
/// N invocations after it, and returns what the wrapper wrote to `out` each time.
fn wrapped(
    row: &RowSpec,
    wrapper: &[String],
    out: &Path,
    log_dir: &Path,
) -> Result<(String, String), String> {
    let tool = wrapper[0].rsplit('/').next().unwrap_or("");
    let mut outputs = Vec::new();
    for (what, n) in [("base", 0), ("full", row.n)] {
        let mut r = row.clone();
        r.name = format!("{} {tool} {what}", row.name);
        r.n = n;
        for attempt in &mut r.attempts {
            attempt.spec.argv.splice(0..0, wrapper.iter().cloned());
        }
        let _ = fs::remove_file(out);
        let mut active = Active::prepare(&r, log_dir);
        active.block(n);
        // Judged before the stop: a runtime killed just after its last post may leave the
        // server a reset connection, which does not matter here.
        let (failures, first) = active.failures();
        let failed = (failures > 0).then(|| {
            format!("{failures} failures ({what} run), the first: {}", first.unwrap_or(""))
        });
        let made = active.measured();
        let exited = stop_wrapped(&active);
        if let Outcome::NotAvailable(why) = active.finish() {
            return Err(why);
        }
        if made < n {
            return Err(format!("{made} of {n} invocations made ({what} run)"));
        }
        if let Some(why) = failed {
            return Err(why);
        }
        if !exited {
            let secs = EXIT_WAIT.as_secs();
            return Err(format!(
                "the runtime did not exit within {secs} s of SIGTERM ({what} run)"
            ));
        }
        outputs.push(
            fs::read_to_string(out).map_err(|e| format!("no output in {}: {e}", out.display()))?,
        );
    }
    let full = outputs.pop().unwrap_or_default();
    Ok((outputs.pop().unwrap_or_default(), full))
}

/// SIGTERM to the runtime under the wrapper (not to the wrapper, which must live on to write
/// its summary), then wait for the wrapper to exit. Whether it did.
fn stop_wrapped(active: &Active) -> bool {
    let Some(wrapper) = active.runtime_pid() else { return true };
    let runtime = process::tree(wrapper).into_iter().find(|&p| process::parent(p) == Some(wrapper));
    if let Some(pid) = runtime {
        process::terminate(pid);
    }
    let until = Instant::now() + EXIT_WAIT;
    while process::alive(wrapper) {
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// strace -c's table: `% time  seconds  usecs/call  calls  [errors]  syscall`.
fn parse_strace(text: &str) -> Counts {
    let mut counts = Counts::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let name = f.last().copied().unwrap_or("");
        if !(f.len() == 5 || f.len() == 6) || f[0].parse::<f64>().is_err() || name == "total" {
            continue;
        }
        let calls = f[3].parse::<f64>().unwrap_or(0.0);
        let errors = if f.len() == 6 { f[4].parse::<f64>().unwrap_or(0.0) } else { 0.0 };
        let entry = counts.entry(name.to_string()).or_default();
        entry.0 += calls;
        entry.1 += errors;
    }
    counts
}

/// perf stat -x, lines: `value,unit,event,...`; events perf could not count are left out.
/// A time in msec becomes `<event>, us`.
fn parse_perf(text: &str) -> Counts {
    let mut counts = Counts::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 3 {
            continue;
        }
        let Ok(value) = f[0].parse::<f64>() else { continue };
        if f[1] == "msec" {
            counts.insert(format!("{}, us", f[2]), (value * 1000.0, 0.0));
        } else {
            counts.insert(f[2].to_string(), (value, 0.0));
        }
    }
    counts
}

/// (full - base) / n for everything counted in the full run.
fn per_invocation(base: &Counts, full: &Counts, n: usize) -> Counts {
    let n = n.max(1) as f64;
    full.iter()
        .map(|(name, &(a, b))| {
            let (a0, b0) = base.get(name).copied().unwrap_or_default();
            (name.clone(), ((a - a0) / n, (b - b0) / n))
        })
        .collect()
}

// --- The report -----------------------------------------------------------------------------

fn report(plan: &Value, n: usize, load: &str, profiles: &[Profile]) -> String {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let machine = plan.get("machine").cloned().unwrap_or(Value::Null);
    let warmup = profiles.first().map_or(0, |p| p.row.warmup);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "bootstrap warm-path profile, {}: {} cores, Linux {}, python {}, awslambdaric {}",
        s(plan, "date"),
        s(&machine, "nproc"),
        s(&machine, "kernel"),
        s(&machine, "python"),
        s(&machine, "awslambdaric"),
    );
    let _ = writeln!(
        t,
        "bootstrap {}, strace {}; load average at the start: {}",
        s(&machine, "bootstrap_commit"),
        s(plan, "strace_version"),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(
        t,
        "N = {n} invocations per row, one after another, after a warm-up of {warmup}. \
         Every figure is per invocation."
    );
    for p in profiles {
        let _ = writeln!(t);
        let _ = writeln!(t, "== {} {}: {}", p.row.lang, p.row.name, command_line(&p.row));
        match &p.untraced {
            Err(why) => {
                let _ = writeln!(t, "  untraced: n/a ({why})");
            }
            Ok(u) => untraced_block(&mut t, u),
        }
        match &p.syscalls {
            Err(why) => {
                let _ = writeln!(t, "  system calls: n/a ({why})");
            }
            Ok(counts) => syscall_block(&mut t, counts),
        }
        match &p.perf_stat {
            None => {}
            Some(Err(why)) => {
                let _ = writeln!(t, "  perf stat: n/a ({why})");
            }
            Some(Ok(counts)) => perf_block(&mut t, counts),
        }
    }
    comparison(&mut t, profiles);
    let _ = writeln!(t);
    for line in [
        "untraced: the rows side by side, 10 invocations per turn; latency: Invoke sent -> answer",
        "received (the driver's loopback server and client). /proc: voluntary_ctxt_switches,",
        "nonvoluntary_ctxt_switches and schedstat of every thread of the runtime's process tree, read",
        "after the warm-up and after the N invocations; a thread that starts and ends in between is",
        "not in them (see the threads started). System calls: strace -f -c, the row run once with the",
        "warm-up alone and once with the N invocations after it, (second - first) / N; strace's own",
        "cost (two stops per call) is in no figure. perf stat: the same two runs, the whole tree.",
    ] {
        let _ = writeln!(t, "{line}");
    }
    if profiles.iter().all(|p| p.perf_stat.is_none()) {
        let _ = writeln!(t, "perf stat: not available on this machine.");
    }
    t
}

fn command_line(row: &RowSpec) -> String {
    let Some(a) = row.attempts.first() else { return String::new() };
    let mut words: Vec<String> = a.spec.argv.clone();
    if let Some(config) = a.spec.env.get("BOOTSTRAP_CONFIG") {
        words.push(format!("(BOOTSTRAP_CONFIG={config})"));
    }
    words.join(" ")
}

fn untraced_block(t: &mut String, u: &Untraced) {
    let _ = writeln!(
        t,
        "  untraced: latency p50 {} ms, mean {:.3} ms; {} of {} failed",
        u.p50.map_or("-".into(), |d| format!("{:.3}", ms(d))),
        ms(u.wall) / u.measured.max(1) as f64,
        u.failures,
        u.measured
    );
    let _ = writeln!(
        t,
        "  {:<40} {:>9} {:>11} {:>8}",
        "/proc: context switches, CPU", "voluntary", "involuntary", "CPU us"
    );
    let line = |t: &mut String, label: String, tasks: &[&Task]| {
        let vol: u64 = tasks.iter().map(|k| k.voluntary).sum();
        let invol: u64 = tasks.iter().map(|k| k.involuntary).sum();
        let cpu: Option<u64> = tasks.iter().map(|k| k.cpu_ns).sum();
        let _ = writeln!(
            t,
            "  {label:<40} {:>9.2} {:>11.2} {:>8}",
            u.per_invocation(vol),
            u.per_invocation(invol),
            cpu.map_or("-".into(), |c| format!("{:.1}", u.per_invocation(c) / 1000.0))
        );
    };
    let pids: BTreeSet<u32> = u.tasks.iter().map(|k| k.pid).collect();
    for pid in &pids {
        let tasks: Vec<&Task> = u.tasks.iter().filter(|k| k.pid == *pid).collect();
        line(t, format!("process {} [{pid}]", tasks[0].process), &tasks);
        if tasks.len() > 1 {
            for k in &tasks {
                line(t, format!("  thread {} [{}]", k.thread, k.tid), &[k]);
            }
        }
    }
    if pids.len() > 1 {
        line(t, "all processes".into(), &u.tasks.iter().collect::<Vec<_>>());
    }
    if u.ended > 0 {
        let _ =
            writeln!(t, "  ({} threads ended during the run; their counts are missing)", u.ended);
    }
}

fn syscall_block(t: &mut String, counts: &Counts) {
    // The calls made per invocation, most first; those made only at start-up or exit cancel out.
    let mut list: Vec<(&String, &(f64, f64))> =
        counts.iter().filter(|(_, c)| tidy(c.0) != 0.0).collect();
    list.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let total: f64 = counts.values().map(|c| c.0).sum();
    let errors: f64 = counts.values().map(|c| c.1).sum();
    let _ = writeln!(
        t,
        "  {:<40} {:>9} {:>11}",
        "strace -f -c: system calls, top 10", "calls", "errors"
    );
    for (name, (calls, errs)) in list.iter().take(10) {
        let _ = writeln!(t, "  {name:<40} {calls:>9.2} {:>11}", fmt_errors(*errs));
    }
    if list.len() > 10 {
        let rest: f64 = list[10..].iter().map(|(_, c)| c.0).sum();
        let _ = writeln!(t, "  {:<40} {rest:>9.2}", format!("the {} others", list.len() - 10));
    }
    let _ = writeln!(t, "  {:<40} {:>9.2} {:>11}", "total", tidy(total), fmt_errors(errors));
    let _ = writeln!(t, "  {:<40} {:>9.2}", "threads or processes started", tidy(starts(counts)));
}

/// Threads and processes started, by the system calls that start them.
fn starts(counts: &Counts) -> f64 {
    STARTS.iter().filter_map(|name| counts.get(*name)).map(|c| c.0).sum()
}

/// 0 for what would show as 0.00 or -0.00 (the noise of a difference).
fn tidy(x: f64) -> f64 {
    if x.abs() < 0.005 {
        0.0
    } else {
        x
    }
}

fn fmt_errors(x: f64) -> String {
    if tidy(x) == 0.0 {
        String::new()
    } else {
        format!("{x:.2}")
    }
}

fn perf_block(t: &mut String, counts: &Counts) {
    let _ = writeln!(t, "  perf stat: the whole tree");
    for (event, (value, _)) in counts {
        let _ = writeln!(t, "  {event:<40} {value:>9.2}");
    }
}

/// The last row against the first (bootstrap warm against awslambdaric).
fn comparison(t: &mut String, profiles: &[Profile]) {
    let [first, .., last] = profiles else { return };
    let _ = writeln!(t);
    let _ = writeln!(t, "== {} against {}, per invocation", last.row.name, first.row.name);
    let _ = writeln!(
        t,
        "  {:<40} {:>12} {:>14} {:>10}",
        "", first.row.name, last.row.name, "difference"
    );
    let mut line = |label: &str, f: &dyn Fn(&Profile) -> Option<f64>, places: usize| {
        if let (Some(x), Some(y)) = (f(first).map(tidy), f(last).map(tidy)) {
            let _ =
                writeln!(t, "  {label:<40} {x:>12.places$} {y:>14.places$} {:>+10.places$}", y - x);
        }
    };
    line("latency p50, ms (untraced)", &|p| Some(ms(p.untraced()?.p50?)), 3);
    line("CPU, us (perf task-clock)", &|p| p.perf("task-clock, us"), 1);
    line("context switches (perf)", &|p| p.perf("context-switches"), 2);
    line("context switches (/proc)", &|p| Some(p.untraced()?.context_switches()), 2);
    line("system calls (strace)", &|p| Some(p.syscalls()?.values().map(|c| c.0).sum()), 2);
    line("threads or processes started (strace)", &|p| Some(starts(p.syscalls()?)), 2);
    line("processes in the tree", &|p| Some(p.untraced()?.processes() as f64), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strace_and_perf_summaries() {
        let strace = "% time     seconds  usecs/call     calls    errors syscall\n\
            ------ ----------- ----------- --------- --------- ----------------\n \
            82.91   11.569554        2755      4199           read\n  \
            1.69    0.235184          19     12122      8081 recvfrom\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00   13.955118         147     16321      8081 total\n";
        let counts = parse_strace(strace);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["read"], (4199.0, 0.0));
        assert_eq!(counts["recvfrom"], (12122.0, 8081.0));

        let perf = "# started on Sat Nov 21 06:24:46 2026\n\n\
            0.75,msec,task-clock,746823,100.00,0.567,CPUs utilized\n\
            12,,context-switches,746823,100.00,0.000,/sec\n\
            <not supported>,,cycles,0,100.00,,\n";
        let counts = parse_perf(perf);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["task-clock, us"].0, 750.0);
        assert_eq!(counts["context-switches"].0, 12.0);

        let base = Counts::from([("read".to_string(), (100.0, 0.0))]);
        let full = Counts::from([
            ("read".to_string(), (300.0, 0.0)),
            ("clone3".to_string(), (100.0, 0.0)),
        ]);
        let per = per_invocation(&base, &full, 100);
        assert_eq!(per["read"], (2.0, 0.0));
        assert_eq!(starts(&per), 1.0);
    }
}
