use std::fs;
use std::process::Command;

use crate::support::*;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value")
}

fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).expect("fd directory").count()
}

/// The fastest handler we can make: a static C echo when gcc is here, else a shell `cat`.
fn fast_handler(lambda: Lambda) -> Lambda {
    if find_on_path("gcc".as_ref()).is_some() {
        let source = lambda.file("echo.c");
        fs::write(
            &source,
            "#include <unistd.h>\nint main(void) { char b[4096]; ssize_t n;\n\
                            while ((n = read(0, b, sizeof b)) > 0) write(1, b, n); return 0; }\n",
        )
        .unwrap();
        let built = Command::new("gcc")
            .args(["-O2", "-static", "-o"])
            .arg(lambda.file("echo"))
            .arg(&source)
            .status();
        if built.is_ok_and(|s| s.success()) {
            return lambda;
        }
    }
    lambda.script("echo", "#!/bin/sh\nexec cat\n")
}

#[test]
fn ten_thousand_events_leak_no_memory_descriptors_or_processes() {
    let events: usize =
        std::env::var("BOOTSTRAP_SOAK_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let run = fast_handler(Lambda::new()).start("echo.handler");
    let pid = run.pid();
    let mut baseline = None;
    for i in 0..events {
        let id = format!("soak-{i}");
        let body = format!("{{\"n\":{i}}}");
        run.assert_serves(Event::new(&id, body.clone()), &body);
        if i == 99 {
            baseline = Some((rss_kib(pid), open_fds(pid)));
        }
    }
    let (rss_at_100, fds_at_100) = baseline.expect("at least 100 events");
    let (rss, fds) = (rss_kib(pid), open_fds(pid));
    eprintln!(
        "after {events} events: RSS {rss} KiB (after 100: {rss_at_100} KiB), {fds} fds (after 100: {fds_at_100})"
    );
    // Under qemu-user the RSS is the emulator's, translation cache included.
    if !emulated("the RSS of an emulated binary") {
        assert!(rss <= rss_at_100 + 1024, "RSS grew from {rss_at_100} KiB to {rss} KiB");
    }
    assert_eq!(fds, fds_at_100, "open file descriptors changed");
    run.assert_no_children();
}

/// Fork mode leaks nothing either: every event forks a child and two named pipes, and after
/// thousands of them bootstrap holds the same descriptors and memory, and only the warden, the
/// loaded parent and the next event's child exist.
#[test]
fn two_thousand_forked_events_leak_no_memory_descriptors_or_processes() {
    if !have("python3") {
        return;
    }
    let events: usize = std::env::var("BOOTSTRAP_SOAK_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(2_000, |n: usize| n / 5);
    let run = Lambda::new()
        .config(&Mode::Fork.config())
        .fixture("python/echo.py", "echo.py")
        .start("echo.handler");
    let pid = run.pid();
    let mut baseline = None;
    for i in 0..events {
        let body = format!("{{\"n\":{i}}}");
        let post = run.response_to(Event::new(&format!("fork-{i}"), body));
        assert_eq!(post.json()["n"], i, "{}", post.body_text());
        if i == 99 {
            // Once it asks for the next event, the next child is forked and connected.
            run.api.wait_for_polls(i + 2);
            baseline = Some((rss_kib(pid), open_fds(pid)));
        }
    }
    run.api.wait_for_polls(events + 1);
    let (rss_at_100, fds_at_100) = baseline.expect("at least 100 events");
    let (rss, fds) = (rss_kib(pid), open_fds(pid));
    eprintln!(
        "after {events} forked events: RSS {rss} KiB (after 100: {rss_at_100}), {fds} fds (after 100: {fds_at_100})"
    );
    if !emulated("the RSS of an emulated binary") {
        assert!(rss <= rss_at_100 + 1024, "RSS grew from {rss_at_100} KiB to {rss} KiB");
    }
    assert_eq!(fds, fds_at_100, "open file descriptors changed");
    run.assert_children_at_most(3);
}
