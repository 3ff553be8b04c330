//! The container image. Here, without an engine: the Dockerfile's required shape (its source
//! build runs the same script CI runs, its runtime stage precompiles the built-in module), the
//! baked policy, and the Docker-like seccomp profile's rules. In [`live`], with an engine: the
//! built image run over MCP under two seccomp profiles (CI builds it with
//! scripts/container-image and sets RUNBOX_TEST_IMAGE).

use crate::support::*;

mod live;
use std::path::Path;

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)).unwrap()
}

/// Instructions with their arguments, continuation lines joined, comments dropped.
fn instructions() -> Vec<(String, String)> {
    let text = repo_file("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(stripped) = t.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        out.push((op.to_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

#[test]
fn dockerfile_has_the_required_shape() {
    let ins = instructions();
    let froms: Vec<&String> = ins
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert!(froms.len() >= 2, "multi-stage build expected: {froms:?}");
    // Global build arguments: the runtime's base (default: the official image) and where the
    // binary comes from (default: compiled from source, as plain `docker build .` always did).
    let first_stage = ins.iter().position(|(op, _)| op == "FROM").unwrap();
    let global_args: Vec<&str> = ins[..first_stage]
        .iter()
        .filter(|(op, _)| op == "ARG")
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        global_args.contains(&"BASE=debian:bookworm-slim"),
        "{global_args:?}"
    );
    assert!(
        global_args.contains(&"RUNBOX_BUILD=source"),
        "{global_args:?}"
    );
    let stage = |name: &str| -> Vec<(String, String)> {
        let start = ins
            .iter()
            .position(|(op, a)| op == "FROM" && a.ends_with(&format!(" AS {name}")))
            .unwrap_or_else(|| panic!("no stage {name}: {froms:?}"));
        ins[start + 1..]
            .iter()
            .take_while(|(op, _)| op != "FROM")
            .cloned()
            .collect()
    };
    assert!(
        froms.contains(&&"build-${RUNBOX_BUILD} AS build".to_owned()),
        "{froms:?}"
    );
    assert!(
        stage("build-prebuilt")
            .iter()
            .any(|(op, a)| op == "COPY" && a == "prebuilt/runbox /out/runbox"),
        "the prebuilt stage copies the binary scripts/container-image stages"
    );
    let last_stage = ins.iter().rposition(|(op, _)| op == "FROM").unwrap();
    let runtime = &ins[last_stage..];
    let get = |op: &str| {
        runtime
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.clone())
            .collect::<Vec<_>>()
    };

    let user = get("USER");
    assert_eq!(user.len(), 1, "one USER in the runtime stage");
    let uid: u32 = user[0]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric uid");
    assert_ne!(uid, 0, "the runtime user must not be root");

    let entry = get("ENTRYPOINT");
    assert!(entry[0].starts_with(r#"["runbox", "serve""#), "{entry:?}");
    let volumes = get("VOLUME").join(" ");
    for v in ["/workspace", "/var/lib/runbox/audit", "/var/cache/runbox"] {
        assert!(volumes.contains(v), "VOLUME {v} missing: {volumes}");
    }
    assert!(get("COPY").iter().any(|c| c.contains("docker/policy.toml")));
    let runs = get("RUN").join("\n");
    assert!(
        runs.contains(&format!("--uid {uid}")),
        "the user is created with the USER uid"
    );
    assert!(
        runs.contains("chown 10001:10001"),
        "writable dirs are handed to the user"
    );
    // The built-in module is compiled at build time, by the binary, as root, before USER, into
    // the read-only directory the baked policy names.
    let precompile = runtime
        .iter()
        .position(|(op, a)| {
            op == "RUN"
                && a.starts_with(
                    "runbox precompile --config /etc/runbox/policy.toml --out /usr/lib/runbox/modules",
                )
        })
        .expect("a RUN runbox precompile step in the runtime stage");
    let user_at = runtime.iter().position(|(op, _)| op == "USER").unwrap();
    assert!(
        precompile < user_at,
        "precompile must run as root, before USER"
    );
    let step = &runtime[precompile].1;
    for part in [
        "chown -R 0:0 /usr/lib/runbox",
        "-type d -exec chmod 0755",
        "-type f -exec chmod 0444",
    ] {
        assert!(step.contains(part), "{part} missing from {step}");
    }

    assert_eq!(
        froms.last().map(|f| f.as_str()),
        Some("${BASE} AS runtime"),
        "the runtime stage is built on the BASE argument"
    );
    assert!(
        get("COPY")
            .iter()
            .any(|c| c == "--from=build /out/runbox /usr/local/bin/runbox")
    );
    assert!(
        stage("build-source")
            .iter()
            .any(|(op, a)| op == "RUN" && a.starts_with("./scripts/build-release /out")),
        "the source build stage must run scripts/build-release (what CI runs)"
    );
    let script = repo_file("scripts/build-release");
    assert!(
        script.contains("rustup target add wasm32-wasip1")
            && script.contains("cargo build --release --locked")
    );
    let ignore = repo_file(".dockerignore");
    assert!(
        ignore.contains("target/"),
        "the build context must not ship target/"
    );
}

#[test]
fn baked_policy_is_valid_and_matches_the_image_dirs() {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/policy.toml");
    let out = as_server_user(runbox_bin())
        .args(["check-config", "--config"])
        .arg(&policy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let dockerfile = repo_file("Dockerfile");
    for key in [
        "workspace = \"/workspace\"",
        "audit_dir = \"/var/lib/runbox/audit\"",
        "cache_dir = \"/var/cache/runbox/modules\"",
        "precompiled_dir = \"/usr/lib/runbox/modules\"",
    ] {
        assert!(
            text.contains(key),
            "{key} not in the effective policy:\n{text}"
        );
        let dir = key.split('"').nth(1).unwrap();
        assert!(
            dockerfile.contains(dir),
            "{dir} is not created in the Dockerfile"
        );
    }
    assert!(text.contains("allow_root = false"));
}

/// The Docker-like seccomp profile CI runs the image under denies what Docker's default denies a
/// process without CAP_SYS_ADMIN (docker/README.md): new namespaces, `clone3`, mounts.
#[test]
fn seccomp_profile_reproduces_dockers_namespace_rules() {
    let profile: serde_json::Value =
        serde_json::from_str(&repo_file("docker/seccomp-docker-default.json")).unwrap();
    let rules = profile["syscalls"].as_array().unwrap();
    let names = |r: &serde_json::Value| -> Vec<String> {
        r["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let empty = |v: &serde_json::Value| {
        v.is_null()
            || v.as_object().is_some_and(|o| o.is_empty())
            || v.as_array().is_some_and(|a| a.is_empty())
    };
    let without_admin = |r: &serde_json::Value| {
        r["excludes"]["caps"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "CAP_SYS_ADMIN"))
    };
    let gated = [
        "clone",
        "clone3",
        "unshare",
        "setns",
        "mount",
        "umount2",
        "fsopen",
        "open_tree",
    ];
    for rule in rules {
        let unconditional_allow = rule["action"] == "SCMP_ACT_ALLOW"
            && empty(&rule["args"])
            && empty(&rule["includes"])
            && empty(&rule["excludes"]);
        if unconditional_allow {
            for name in gated {
                assert!(
                    !names(rule).iter().any(|n| n == name),
                    "{name} is allowed to every process"
                );
            }
        }
    }
    const NAMESPACE_MASK: u64 = 0x7E02_0000;
    let clone_allowed_without_flags = rules.iter().any(|r| {
        names(r) == ["clone"]
            && r["action"] == "SCMP_ACT_ALLOW"
            && without_admin(r)
            && r["args"][0]["index"] == 0
            && r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
            && r["args"][0]["value"] == NAMESPACE_MASK
            && r["args"][0]["valueTwo"] == 0
    });
    assert!(clone_allowed_without_flags, "clone without namespace flags");
    let clone_flag_denials: u64 = rules
        .iter()
        .filter(|r| names(r) == ["clone"] && r["action"] == "SCMP_ACT_ERRNO" && without_admin(r))
        .map(|r| r["args"][0]["value"].as_u64().unwrap())
        .fold(0, |mask, flag| mask | flag);
    assert_eq!(
        clone_flag_denials, NAMESPACE_MASK,
        "every namespace flag makes clone fail"
    );
    assert!(rules.iter().any(|r| names(r) == ["clone3"]
        && r["action"] == "SCMP_ACT_ERRNO"
        && r["errnoRet"] == 38
        && without_admin(r)));
    let refused: Vec<String> = rules
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ERRNO" && r["errnoRet"] == 1 && without_admin(r))
        .flat_map(names)
        .collect();
    for name in ["unshare", "setns", "mount", "umount2"] {
        assert!(refused.iter().any(|n| n == name), "{name} is not refused");
    }
    for name in [
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "prctl",
        "seccomp",
        "setsid",
    ] {
        assert!(
            rules.iter().any(|r| r["action"] == "SCMP_ACT_ALLOW"
                && empty(&r["includes"])
                && names(r).iter().any(|n| n == name)),
            "{name} must stay allowed (Docker allows it)"
        );
    }
}
