use crate::support::*;

#[test]
fn a_language_added_by_config_alone_runs() {
    if !have("awk") {
        return;
    }
    let config =
        "[interpreters.awk]\nextensions = [\"awk\"]\ncommand = [\"awk\", \"-f\", \"{file}\"]\n";
    let run =
        Lambda::new().config(config).write("up.awk", "{ print toupper($0) }\n").start("up.handler");
    assert_eq!(run.response_to(Event::new("r1", "hello\n")).body_text(), "HELLO\n");
}

#[test]
fn placeholders_are_filled_into_argv() {
    let config = "[interpreters.args]\nextensions = [\"args\"]\n\
                  command = [\"/bin/sh\", \"{task_root}/show.sh\", \"{file}\", \"{method}\", \"--root={task_root}\", \"{{literal}\"]\n";
    let run = Lambda::new()
        .config(config)
        .write("h.args", "")
        .write("show.sh", "for a in \"$@\"; do printf '[%s]' \"$a\"; done\n")
        .start("h.run");
    let post = run.response_to(Event::new("r1", "{}"));
    let root_path = std::path::absolute(run.root()).unwrap().display().to_string();
    assert_eq!(
        post.body_text(),
        format!("[{root_path}/h.args][run][--root={root_path}][{{literal}}]")
    );
}

#[test]
fn the_event_as_an_argument_and_its_size_limit() {
    let config = "[interpreters.arg]\nextensions = [\"arg\"]\ncommand = [\"/bin/sh\", \"{file}\", \"{event}\"]\n";
    let run =
        Lambda::new().config(config).write("h.arg", "printf '%s' \"$1\"\n").start("h.handler");
    assert_eq!(
        run.response_to(Event::new("r1", "{\"a\": \"b c\"}")).body_text(),
        "{\"a\": \"b c\"}"
    );
    let file = run.file("interpreters.toml").display().to_string();
    assert_error(
        &run.error_for(Event::new("r2", vec![b'x'; 128 * 1024 + 1])),
        "Runtime.EventTooLarge",
        &["131073 bytes", "{event_file}", &file],
    );
    run.assert_serves(Event::new("r3", "x"), "x");
}

#[test]
fn the_event_in_a_temporary_file_is_removed_afterwards() {
    let config = "[interpreters.f]\nextensions = [\"f\"]\ncommand = [\"/bin/sh\", \"{file}\", \"{event_file}\"]\n";
    let run = Lambda::new()
        .config(config)
        .write("h.f", "printf '%s|' \"$1\" > seen\nwc -c < \"$1\"\n")
        .start("h.handler");
    let post = run.response_to(Event::new("r1", vec![b'y'; 5 * 1024 * 1024]));
    assert_eq!(post.body_text().trim(), "5242880");
    let seen = std::fs::read_to_string(run.file("seen")).unwrap();
    let path = seen.trim_end_matches('|');
    assert!(!std::path::Path::new(path).exists(), "event file {path} was left behind");
}

#[test]
fn layers_apply_in_order_and_bootstrap_config_comes_last() {
    // The task root maps .x to one program; BOOTSTRAP_CONFIG replaces that entry by name.
    let task = "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"/bin/echo\", \"task\"]\n";
    let extra = "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"/bin/echo\", \"extra\"]\n";
    let lambda = Lambda::new().config(task).write("extra.toml", extra).write("h.x", "");
    let run = lambda.start("h.handler");
    assert_eq!(run.response_to(Event::new("r1", "{}")).body_text(), "task\n");
    drop(run);
    let extra_path = lambda.file("extra.toml").display().to_string();
    let run = lambda.env("BOOTSTRAP_CONFIG", &extra_path).start("h.handler");
    assert_eq!(run.response_to(Event::new("r1", "{}")).body_text(), "extra\n");
}

#[test]
fn a_later_layer_can_take_over_a_built_in_extension() {
    let config =
        "[interpreters.myperl]\nextensions = [\"pl\"]\ncommand = [\"/bin/sh\", \"{file}\"]\n";
    let run = Lambda::new().config(config).write("h.pl", "printf 'run by sh'\n").start("h.handler");
    assert_eq!(run.response_to(Event::new("r1", "{}")).body_text(), "run by sh");
}

#[test]
fn a_later_file_changes_single_keys_of_a_built_in_entry() {
    let out = Lambda::new()
        .config("[interpreters.perl]\nconvention = \"p5-aws-lambda\"\n")
        .write("h.pl", "sub handler { 1 }\n1;\n")
        .check("h.handler");
    let shown = &out.stdout;
    // The built-in command and protocol are kept; only the convention was added.
    assert!(out.success(), "{}", out.stderr);
    assert!(shown.contains("perl/runner.pl") && shown.contains("interpreter: perl"), "{shown}");
}

#[test]
fn a_new_entry_without_a_command_is_an_error_naming_the_built_in_ones() {
    let out = Lambda::new()
        .config("[interpreters.pearl]\nconvention = \"p5-aws-lambda\"\n")
        .write("h.pl", "1;\n")
        .check("h.handler");
    let shown = &out.stderr;
    assert!(!out.success(), "{shown}");
    for expected in ["line 1: [interpreters.pearl]: extensions is missing", "perl, php, python"] {
        assert!(shown.contains(expected), "want {expected:?} in:\n{shown}");
    }
}
