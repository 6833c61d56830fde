use std::collections::BTreeSet;

use crate::support::*;

/// Each handler arrives, then waits until all three have arrived: with fewer than three
/// invocations running at once, none of them could finish.
const BARRIER: &str = "#!/bin/bash\n\
    touch \"arrived/$LAMBDA_RUNTIME_AWS_REQUEST_ID\"\n\
    for i in $(seq 500); do\n\
      files=(arrived/*); [ ${#files[@]} -ge 3 ] && { printf '%s' \"$TMPDIR\"; exit 0; }\n\
      sleep 0.02\n\
    done\n\
    exit 9\n";

#[test]
fn max_concurrency_runs_that_many_invocations_at_once_each_with_its_own_tmpdir() {
    let api = MockApi::start();
    let root = TaskRoot::new().script("barrier", BARRIER);
    std::fs::create_dir(root.file("arrived")).unwrap();
    let _b = Bootstrap::start_with(
        &api,
        &root,
        "barrier.handler",
        &[("AWS_LAMBDA_MAX_CONCURRENCY", Some("3"))],
    );
    // Three pollers wait before any event exists.
    api.wait_for_polls(3);
    for id in ["a", "b", "c"] {
        api.push(Event::new(id, "{}"));
    }
    let mut tmpdirs = BTreeSet::new();
    for _ in 0..3 {
        let post = api.next_post();
        assert!(post.path.ends_with("/response"), "{}: {}", post.path, post.body_text());
        tmpdirs.insert(post.body_text());
    }
    assert_eq!(tmpdirs.len(), 3, "each invocation gets its own TMPDIR: {tmpdirs:?}");
    for dir in &tmpdirs {
        assert!(dir.contains("bootstrap-tmp-"), "{dir}");
    }
    // Every loop polls again after its answer, and no loop beyond the three exists.
    api.wait_for_polls(6);
    assert_eq!(api.next_requests_made(), 6, "never more pollers than AWS_LAMBDA_MAX_CONCURRENCY");
    for dir in &tmpdirs {
        assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
    }
}

#[test]
fn a_framed_worker_per_loop_also_gets_a_private_tmpdir() {
    if !have("python3") {
        return;
    }
    let handler = "import os\n\ndef handler(event, context):\n    return os.environ['TMPDIR']\n";
    let root = TaskRoot::new().write("tmp.py", handler).mode(Mode::Warm);
    let api = MockApi::start();
    let _b = Bootstrap::start_with(
        &api,
        &root,
        "tmp.handler",
        &[("AWS_LAMBDA_MAX_CONCURRENCY", Some("2"))],
    );
    api.wait_for_polls(2);
    api.push(Event::new("a", "{}"));
    let post = api.expect_post("/runtime/invocation/a/response");
    assert!(post.body_text().contains("bootstrap-tmp-"), "{}", post.body_text());
}
