//! `_HANDLER` read per language, as AWS's runtime for each language reads it: which file and
//! which method each name resolves to, shown by `bootstrap check`. The runners' own behaviour
//! with those files is tested in the `aws_*` modules.

use crate::support::*;

/// Asserts that `handler` resolves to `file` (relative to the task root), run by
/// `interpreter`, with `method` as the runner's method argument.
#[track_caller]
fn assert_resolves(root: &Lambda, handler: &str, file: &str, interpreter: &str, method: &str) {
    let out = root.check(handler);
    let (ok, shown) = (out.success(), out.printed());
    let want_file = format!("file:        {}\n", root.file(file).display());
    let want_interpreter = format!("interpreter: {interpreter} ");
    let want_method = format!("\"{method}\"]");
    assert!(
        ok && shown.contains(&want_file)
            && shown.contains(&want_interpreter)
            && shown.contains(&want_method),
        "{handler:?}: want {file} run by {interpreter} with method {method:?}:\n{shown}"
    );
}

#[test]
fn python_names_a_dotted_or_slashed_module_path_or_a_package() {
    let root = Lambda::new()
        .write("pkg/__init__.py", "")
        .write("pkg/module.py", "def handler(e, c): return 1\n")
        .write("dir/mod.py", "def handler(e, c): return 1\n")
        .write("both/__init__.py", "def handler(e, c): return 1\n")
        .write("both.py", "def handler(e, c): return 1\n");
    assert_resolves(&root, "pkg.module.handler", "pkg/module.py", "python", "handler");
    assert_resolves(&root, "dir/mod.handler", "dir/mod.py", "python", "handler");
    assert_resolves(&root, "pkg.handler", "pkg/__init__.py", "python", "handler");
    // Python's import takes the package over a module of the same name.
    assert_resolves(&root, "both.handler", "both/__init__.py", "python", "handler");
}

#[test]
fn node_splits_at_the_first_dot_and_takes_files_in_aws_order() {
    let root = Lambda::new()
        .write("app.js", "exports.nested = {}\n")
        .write("lib/index", "exports.handler = 1\n")
        .write("lib/index.js", "exports.handler = 2\n")
        .write("esm.mjs", "export const handler = 1\n")
        .write("esm.cjs", "exports.handler = 2\n")
        .write("both.js", "exports.handler = 1\n")
        .write("both.mjs", "export const handler = 2\n");
    assert_resolves(&root, "app.nested.export.path", "app.js", "node", "nested.export.path");
    assert_resolves(&root, "lib/index.handler", "lib/index", "node", "handler");
    assert_resolves(&root, "esm.handler", "esm.mjs", "node", "handler");
    assert_resolves(&root, "both.handler", "both.js", "node", "handler");
}

#[test]
fn an_extensionless_script_is_an_executable_not_node() {
    let out =
        Lambda::new().script("run", "#!/bin/sh\ncat\n").write("app.js", "").check("run.handler");
    let shown = out.printed();
    assert!(out.success() && shown.contains("interpreter: none"), "{shown}");
}

#[test]
fn ruby_splits_at_the_first_dot_and_keeps_the_namespace_in_the_method() {
    let root = Lambda::new().write("app.rb", "").write("lib/fn.rb", "");
    assert_resolves(&root, "app.handler", "app.rb", "ruby", "handler");
    assert_resolves(&root, "app.Module::Klass.process", "app.rb", "ruby", "Module::Klass.process");
    assert_resolves(&root, "lib/fn.Handler.call", "lib/fn.rb", "ruby", "Handler.call");
}

#[test]
fn perl_and_shell_keep_the_last_dot() {
    let root = Lambda::new().write("src/lambda.v2.pl", "").write("h.sh", "");
    assert_resolves(&root, "src/lambda.v2.handler", "src/lambda.v2.pl", "perl", "handler");
    assert_resolves(&root, "h.sh.handler", "h.sh", "shell", "handler");
}

#[test]
fn a_missing_module_in_a_one_language_task_root_is_left_to_that_runner() {
    let root = Lambda::new().write("other.py", "");
    assert_resolves(&root, "missing_module.handler", "missing_module.py", "python", "handler");
    let mixed = Lambda::new().write("other.py", "").write("other.pl", "1;\n");
    let out = mixed.check("missing_module.handler");
    let shown = out.printed();
    assert!(!out.success() && shown.contains("Runtime.HandlerNotFound"), "{shown}");
}

#[test]
fn the_same_name_in_two_languages_is_still_ambiguous() {
    let out = Lambda::new().write("h.py", "").write("h.js", "").check("h.handler");
    let shown = out.printed();
    assert!(!out.success() && shown.contains("ambiguous") && shown.contains("h.py"), "{shown}");
    assert!(shown.contains("h.js"), "{shown}");
}

#[test]
fn runners_get_the_handler_name_and_the_convention_in_their_environment() {
    let config = "[interpreters.env]\nextensions = [\"env\"]\n\
                  command = [\"/bin/sh\", \"{file}\"]\nconvention = \"c-1\"\n";
    let lambda = Lambda::new().config(config).write(
        "show.env",
        "printf '%s|%s|%s' \"$_HANDLER\" \"$BOOTSTRAP_CONVENTION\" \"$LAMBDA_TASK_ROOT\"\n",
    );
    let task_root = std::path::absolute(lambda.root()).unwrap().display().to_string();
    let out = lambda
        .env("_HANDLER", "not.this")
        .env("BOOTSTRAP_CONVENTION", "inherited")
        .cli(&["invoke", "--handler", "show.anything", "--task-root", &task_root, "-"])
        .stdin("{}")
        .run();
    assert_eq!(out.stdout, format!("show.anything|c-1|{task_root}"), "{}", out.stderr);
}

#[test]
fn an_inherited_convention_never_reaches_a_runner_without_one() {
    let out = Lambda::new()
        .write("show.sh", "handler() { printf '[%s]' \"$BOOTSTRAP_CONVENTION\"; }\n")
        .env("BOOTSTRAP_CONVENTION", "inherited")
        .cli(&["invoke", "--handler", "show.handler", "-"])
        .stdin("{}")
        .run();
    assert_eq!(out.stdout, "[]", "{}", out.stderr);
}

#[test]
fn p5_aws_lambdas_convention_reads_the_name_at_its_first_dot() {
    let root = Lambda::new()
        .config("[interpreters.perl]\nconvention = \"p5-aws-lambda\"\n")
        .write("app.pl", "sub handle { 1 }\n1;\n");
    assert_resolves(&root, "app.handle", "app.pl", "perl", "handle");
    // The runner refuses `v2.handle` in p5-aws-lambda's own words.
    assert_resolves(&root, "app.v2.handle", "app.pl", "perl", "v2.handle");
}

#[test]
fn a_missing_module_beside_packages_only_is_left_to_that_runner_too() {
    let root = Lambda::new().write("src/__init__.py", "").write("src/other.py", "");
    assert_resolves(&root, "src/missing.handler", "src/missing.py", "python", "handler");
}
