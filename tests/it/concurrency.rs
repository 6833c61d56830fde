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
    let run = Lambda::new()
        .script("barrier", BARRIER)
        .dir("arrived")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "3")
        .start("barrier.handler");
    // Three pollers wait before any event exists.
    run.api.wait_for_polls(3);
    for id in ["a", "b", "c"] {
        run.api.push(Event::new(id, "{}"));
    }
    let mut tmpdirs = BTreeSet::new();
    for _ in 0..3 {
        let post = run.api.next_post();
        assert!(post.path.ends_with("/response"), "{}: {}", post.path, post.body_text());
        tmpdirs.insert(post.body_text());
    }
    assert_eq!(tmpdirs.len(), 3, "each invocation gets its own TMPDIR: {tmpdirs:?}");
    for dir in &tmpdirs {
        assert!(dir.contains("bootstrap-tmp-"), "{dir}");
    }
    // Every loop polls again after its answer, and no loop beyond the three exists.
    run.api.wait_for_polls(6);
    assert_eq!(
        run.api.next_requests_made(),
        6,
        "never more pollers than AWS_LAMBDA_MAX_CONCURRENCY"
    );
    for dir in &tmpdirs {
        assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
    }
}

/// A warm Python handler that meets the other loop's at the named pipe `gate`: the event says
/// which end it opens, and opening one end blocks until the other is open too. It answers with
/// its TMPDIR.
const MEET: &str = "import os\n\ndef handler(event, context):\n    \
                    open(os.path.join(os.environ['LAMBDA_TASK_ROOT'], 'gate'), event['end']).close()\n    \
                    return os.environ['TMPDIR']\n";

#[test]
fn a_framed_worker_per_loop_also_gets_a_private_tmpdir() {
    if !have("python3") {
        return;
    }
    let run = Lambda::new()
        .write("tmp.py", MEET)
        .mode(Mode::Warm)
        .fifo("gate")
        .env("AWS_LAMBDA_MAX_CONCURRENCY", "2")
        .start("tmp.handler");
    run.api.wait_for_polls(2);
    // Neither event can be answered until both run at once: one in each loop's worker.
    run.api.push(Event::new("a", r#"{"end": "r"}"#));
    run.api.push(Event::new("b", r#"{"end": "w"}"#));
    let tmpdirs: BTreeSet<String> = (0..2)
        .map(|_| {
            let post = run.api.next_post();
            assert!(post.path.ends_with("/response"), "{}: {}", post.path, post.body_text());
            post.json().as_str().expect("the TMPDIR, as a JSON string").to_string()
        })
        .collect();
    assert_eq!(tmpdirs.len(), 2, "each loop's worker gets its own TMPDIR: {tmpdirs:?}");
    for dir in &tmpdirs {
        assert!(dir.contains("bootstrap-tmp-"), "{dir}");
    }
}
