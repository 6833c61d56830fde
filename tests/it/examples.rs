use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// The SAM template as JSON, through PyYAML (None, with a printed reason, when it is missing).
fn template() -> Option<Value> {
    let script = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)";
    let path = Path::new(MANIFEST_DIR).join("examples/template.yaml");
    let out = Command::new("python3").args(["-c", script]).arg(&path).output().ok()?;
    if !out.status.success() {
        let why = text(&out.stderr);
        if why.contains("No module named 'yaml'") {
            skip("PyYAML is not installed");
            return None;
        }
        panic!("examples/template.yaml does not parse as YAML:\n{why}");
    }
    Some(serde_json::from_slice(&out.stdout).expect("PyYAML printed JSON"))
}

#[test]
fn the_sam_template_parses_and_names_files_that_exist() {
    if !have("python3") {
        return;
    }
    let Some(template) = template() else { return };
    let examples = Path::new(MANIFEST_DIR).join("examples");
    let resources = template["Resources"].as_object().expect("Resources");
    let mut architectures = Vec::new();
    let mut functions = 0;
    for (name, resource) in resources {
        let properties = &resource["Properties"];
        match resource["Type"].as_str() {
            Some("AWS::Serverless::LayerVersion") => {
                let zip = examples.join(properties["ContentUri"].as_str().expect("ContentUri"));
                assert!(zip.starts_with(examples.join("../dist")), "{name}: {}", zip.display());
                assert!(zip.file_name().unwrap().to_string_lossy().starts_with("bootstrap-layer-"));
                let runtimes = properties["CompatibleRuntimes"].to_string();
                assert!(
                    runtimes.contains("provided.al2023") && runtimes.contains("provided.al2\""),
                    "{name}: {runtimes}"
                );
                architectures.extend(
                    properties["CompatibleArchitectures"].as_array().unwrap().iter().cloned(),
                );
            }
            Some("AWS::Serverless::Function") => {
                functions += 1;
                // CodeUri is dist/example-<name>.zip, made by `make layer` from examples/<name>/.
                let code = properties["CodeUri"].as_str().expect("CodeUri");
                let example = code.trim_start_matches("../dist/example-").trim_end_matches(".zip");
                let (file, _method) =
                    properties["Handler"].as_str().unwrap().rsplit_once('.').unwrap();
                let dir = examples.join(example);
                let found = std::fs::read_dir(&dir)
                    .unwrap_or_else(|e| panic!("{name}: {}: {e}", dir.display()))
                    .any(|e| e.unwrap().path().file_stem().is_some_and(|s| s == file));
                assert!(found, "{name}: no {file}.* in {}", dir.display());
            }
            other => panic!("unexpected resource type {other:?} for {name}"),
        }
    }
    assert_eq!(template["Globals"]["Function"]["Runtime"], "provided.al2023");
    assert_eq!(functions, 3);
    architectures.sort_by_key(|a| a.to_string());
    assert_eq!(architectures, vec![Value::from("arm64"), Value::from("x86_64")]);
    assert!(template["Parameters"]["Architecture"]["AllowedValues"].to_string().contains("arm64"));
}

#[test]
fn the_cli_deploy_script_is_valid_bash() {
    let out = Command::new("bash")
        .arg("-n")
        .arg(Path::new(MANIFEST_DIR).join("examples/deploy.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
