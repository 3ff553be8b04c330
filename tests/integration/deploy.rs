//! deploy/kubernetes: the manifests validate against Kubernetes' schemas (kubernetes-validate,
//! pinned, strict) and keep what runbox's model relies on (deploy/kubernetes/validate.py), the
//! ConfigMap's policy is one this binary accepts, and a copy broken in each such way is refused.
//! Needs a Python with kubernetes-validate: RUNBOX_KUBERNETES_PYTHON (CI makes one and sets
//! RUNBOX_REQUIRE_MANIFEST_VALIDATION=1, which turns a missing validator into a failure).

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// The Python to run the validator with, or `None` (skip) when there is none.
fn python() -> Option<String> {
    let required = std::env::var("RUNBOX_REQUIRE_MANIFEST_VALIDATION").is_ok_and(|v| v == "1");
    let python = std::env::var("RUNBOX_KUBERNETES_PYTHON").ok().filter(|p| {
        Command::new(p)
            .args(["-c", "import kubernetes_validate, yaml"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if python.is_none() {
        assert!(
            !required,
            "RUNBOX_REQUIRE_MANIFEST_VALIDATION=1 but RUNBOX_KUBERNETES_PYTHON is not a Python \
             with kubernetes-validate (deploy/kubernetes/requirements-validate.txt)"
        );
        eprintln!(
            "SKIP: no Python with kubernetes-validate (set RUNBOX_KUBERNETES_PYTHON; .ci/run does)"
        );
    }
    python
}

fn run_validator(python: &str, dir: &Path) -> (bool, String) {
    let out = Command::new(python)
        .arg(dir.join("validate.py"))
        .args(["--runbox", runbox_bin()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_kubernetes_manifests_validate_and_keep_runboxs_settings() {
    let Some(python) = python() else { return };
    let (ok, text) = run_validator(&python, &manifests());
    assert!(ok, "{text}");
    for seen in [
        "Deployment/runbox",
        "NetworkPolicy/runbox",
        "PodTemplate/runbox-example",
        "runbox check-config accepts",
        "all checks passed",
    ] {
        assert!(text.contains(seen), "{seen}: {text}");
    }
}

#[test]
fn a_manifest_broken_in_a_way_that_matters_is_refused() {
    let Some(python) = python() else { return };
    for (file, from, to, expect) in [
        (
            "deployment.yaml",
            "            readOnlyRootFilesystem: true",
            "            readOnlyRootFileSystem: true",
            "'readOnlyRootFileSystem' was unexpected",
        ),
        (
            "deployment.yaml",
            "        runAsUser: 10001\n        runAsGroup",
            "        runAsUser: 0\n        runAsGroup",
            "securityContext.runAsUser is 0",
        ),
        (
            "networkpolicy.yaml",
            "  egress: []",
            "  egress: [{}]",
            "egress is not denied",
        ),
        (
            "sandbox/sandbox.yaml",
            "  service: true",
            "  service: true\n  replicas: 2",
            "fields the CRD does not have: ['replicas']",
        ),
        (
            "sandbox/sandbox.yaml",
            "              drop: [\"ALL\"]",
            "              drop: [\"NET_RAW\"]",
            "does not drop ALL capabilities",
        ),
        (
            "configmap-policy.yaml",
            "    isolation = \"reaper\"",
            "    isolation = \"sometimes\"",
            "check-config refuses the policy",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("kubernetes");
        std::fs::create_dir_all(copy.join("sandbox")).unwrap();
        for rel in [
            "validate.py",
            "kustomization.yaml",
            "namespace.yaml",
            "configmap-policy.yaml",
            "secret-tokens.example.yaml",
            "pvc.yaml",
            "deployment.yaml",
            "service.yaml",
            "networkpolicy.yaml",
            "sandbox/sandbox.yaml",
        ] {
            std::fs::copy(manifests().join(rel), copy.join(rel)).unwrap();
        }
        let text = std::fs::read_to_string(copy.join(file)).unwrap();
        assert!(text.contains(from), "{file} no longer has {from:?}");
        std::fs::write(copy.join(file), text.replacen(from, to, 1)).unwrap();
        let (ok, out) = run_validator(&python, &copy);
        assert!(!ok && out.contains(expect), "{file}: {expect}: {out}");
    }
}
