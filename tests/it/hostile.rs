use crate::support::*;

/// Events that would run code if anything pasted them into a shell or an `eval`.
fn hostile_events(marker: &str) -> Vec<Vec<u8>> {
    let mut events: Vec<Vec<u8>> = [
        format!("{{\"a\":\"$(touch {marker})\"}}"),
        format!("{{\"a\":\"`touch {marker}`\"}}"),
        format!("{{\"a\":\"x; touch {marker}; rm -rf {marker}.dir\"}}"),
        format!("{{\"a\":\"\\\"; system('touch {marker}'); \\\"\"}}"),
        format!("{{\"a\":\"'); import os; os.system('touch {marker}'); ('\"}}"),
        format!("{{\"a\":\"${{IFS}}touch${{IFS}}{marker}\"}}"),
        format!("touch {marker}\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    events.push(b"{\"a\":\"nul\0byte\"}".to_vec());
    events.push(b"{\"a\":\"\xff\xfe invalid utf-8\"}".to_vec());
    let depth = 10_000;
    events.push(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes());
    events
}

#[test]
fn hostile_events_never_run_as_code_in_any_language() {
    // The shell runner is run by bash (`Mode::config`).
    let handlers = [
        ("bash", "shell/echo.sh", "echo.sh"),
        ("perl", "perl/echo.pl", "echo.pl"),
        ("python3", "python/echo.py", "echo.py"),
        ("node", "node/echo.js", "echo.js"),
    ];
    let handlers = handlers.into_iter().filter(|(program, ..)| have(program));
    let runs = handlers.flat_map(|h| ALL_MODES.map(|mode| (h, mode)));
    for ((program, fixture, file), mode) in runs {
        let run = Lambda::new().fixture(fixture, file).mode(mode).start("echo.handler");
        let marker = run.file("pwned").display().to_string();
        for (i, event) in hostile_events(&marker).into_iter().enumerate() {
            let id = format!("h{i}");
            let post = run.invoke(Event::new(&id, event));
            // Either answer is fine (a decode error is a clear error); running code is not.
            assert!(
                post.path.ends_with(&format!("/{id}/response"))
                    || post.path.ends_with(&format!("/{id}/error")),
                "{}",
                post.path
            );
            if post.path.ends_with("/error") {
                let body = post.json();
                assert!(
                    body["errorType"].is_string() && body["errorMessage"].is_string(),
                    "{program}: {body}"
                );
            }
        }
        run.response_to(Event::new("last", "{\"ok\":1}"));
        assert!(!run.file("pwned").exists(), "{program} {mode:?}: an event ran as code");
        assert_no_panic(&run.stop());
    }
}

#[test]
fn hostile_events_passed_as_an_argument_or_a_file_stay_data() {
    for placeholder in ["{event}", "{event_file}"] {
        let config = format!(
            "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"/bin/sh\", \"{{file}}\", \"{placeholder}\"]\n"
        );
        let run = Lambda::new()
            .config(&config)
            .write("h.x", "printf '%s' \"$1\" | wc -c\n")
            .start("h.handler");
        let marker = run.file("pwned").display().to_string();
        for (i, event) in hostile_events(&marker).into_iter().enumerate() {
            let id = format!("h{i}");
            let has_nul = event.contains(&0);
            let post = run.invoke(Event::new(&id, event));
            if has_nul && placeholder == "{event}" {
                assert_error(&post, "Runtime.InvalidEvent", &["NUL"]);
            } else {
                assert!(
                    post.path.ends_with(&format!("/{id}/response")),
                    "{placeholder}: {} {}",
                    post.path,
                    post.body_text()
                );
            }
        }
        assert!(!run.file("pwned").exists(), "{placeholder}: an event ran as code");
    }
}
