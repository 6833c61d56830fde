use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// `dist/bootstrap-layer-<arch>.zip`, built by `make layer`.
fn layer_zip(arch: &str) -> Option<PathBuf> {
    let zip = Path::new(MANIFEST_DIR).join(format!("dist/bootstrap-layer-{arch}.zip"));
    if zip.is_file() {
        return Some(zip);
    }
    skip(&format!("{} not built (make layer)", zip.display()));
    None
}

/// Unzips a layer into `<root>/opt`, as Lambda does into /opt.
fn unzip_layer(zip: &Path, lambda: &Lambda) -> PathBuf {
    let opt = lambda.file("opt");
    let status =
        Command::new("unzip").arg("-q").arg(zip).arg("-d").arg(&opt).status().expect("run unzip");
    assert!(status.success(), "unzip {}", zip.display());
    opt
}

#[test]
fn each_layer_zip_serves_an_event_from_an_unzipped_opt() {
    if !have("unzip") {
        return;
    }
    for (arch, emulator) in [("x86_64", None), ("arm64", Some("qemu-aarch64-static"))] {
        let Some(zip) = layer_zip(arch) else { continue };
        if emulator.is_some_and(|e| !have(e)) {
            continue;
        }
        let example =
            fs::read_to_string(Path::new(MANIFEST_DIR).join("examples/shell/handler.sh")).unwrap();
        let lambda = Lambda::new().write("task/handler.sh", &example);
        let opt = unzip_layer(&zip, &lambda);
        let bootstrap = opt.join("bootstrap");
        let mode =
            fs::metadata(&bootstrap).expect("bootstrap at the zip root").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{arch}: the run bit was lost ({mode:o})");
        assert!(
            opt.join("interpreters.toml").is_file() && opt.join("layers/shell/runner.sh").is_file()
        );
        let emulator = emulator.map(|e| find_on_path(e.as_ref()).expect("emulator on PATH"));
        let program = emulator.into_iter().chain([bootstrap]);
        let task = lambda.file("task").display().to_string();
        // No BOOTSTRAP_RUNNERS: the runners must be found beside the unzipped bootstrap.
        let run = lambda
            .program(program)
            .env_remove("BOOTSTRAP_RUNNERS")
            .env("LAMBDA_TASK_ROOT", &task)
            .start("handler.handler");
        let body = run.response_to(Event::new("r1", "{\"n\":1}")).json();
        assert_eq!(body["received"]["n"], 1, "{arch}: {body}");
    }
}

#[test]
fn the_static_binary_runs_in_an_empty_root_without_any_libc() {
    // SAFETY: geteuid only reads our own credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: chroot needs root");
        return;
    }
    if !have("gcc") || !have("chroot") || !have("unzip") {
        return;
    }
    let Some(zip) = layer_zip("x86_64") else {
        return;
    };
    let lambda = Lambda::new();
    let opt = unzip_layer(&zip, &lambda);
    // The jail holds exactly two files: the layer's bootstrap and a static handler.
    let jail = lambda.file("jail");
    fs::create_dir(&jail).unwrap();
    fs::copy(opt.join("bootstrap"), jail.join("bootstrap")).unwrap();
    let source = lambda.file("handler.c");
    fs::write(
        &source,
        "#include <unistd.h>\nint main(void) { char b[4096]; ssize_t n; write(1, \"static:\", 7);\n\
         while ((n = read(0, b, sizeof b)) > 0) write(1, b, n); return 0; }\n",
    )
    .unwrap();
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(jail.join("handler"))
        .arg(&source)
        .status()
        .unwrap();
    assert!(built.success(), "gcc -static");
    let entries: Vec<_> = fs::read_dir(&jail).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 2, "the jail must hold only bootstrap and the handler: {entries:?}");

    let chroot = find_on_path("chroot".as_ref()).unwrap();
    let run = lambda
        .program([chroot, jail, "/bootstrap".into()])
        .env("LAMBDA_TASK_ROOT", "/")
        .env("PATH", "/")
        .env_remove("BOOTSTRAP_RUNNERS")
        .start("handler.run");
    let post = run.response_to(Event::new("r1", "{\"in\":\"jail\"}"));
    assert_eq!(post.body_text(), "static:{\"in\":\"jail\"}");
}
