#!/usr/bin/env python3
"""Validates deploy/kubernetes against Kubernetes' schemas, and checks what runbox needs of it.

What it does, and what it must not do: it reads the manifests only (never a cluster). Every
manifest of the kustomization is validated strictly (unknown fields refused) with
kubernetes-validate against the pinned Kubernetes version. The agent-sandbox `Sandbox` example
cannot be: kubernetes-validate takes no CRD schema. So its parts that are Kubernetes types are
validated as those types (spec.podTemplate as a v1 PodTemplate, each volumeClaimTemplate as a
v1 PersistentVolumeClaim), and its own fields are checked against the field list of the CRD
(agents.x-k8s.io/v1beta1, kubernetes-sigs/agent-sandbox at 2fd412d5). Then the pod of both the
Deployment and the Sandbox is checked for the settings runbox's security model relies on, and
the policy in the ConfigMap with `runbox check-config` when --runbox names a binary.

Usage: validate.py [--kubernetes-version 1.34.0] [--runbox PATH]; exit 0 when all holds.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
# The agent-sandbox Sandbox spec (v1beta1): every field, as its CRD lists them.
SANDBOX_SPEC_FIELDS = {
    "operatingMode", "podTemplate", "service", "shutdownPolicy", "shutdownTime",
    "volumeClaimTemplates",
}
SANDBOX_ENUMS = {"operatingMode": {"Running", "Suspended"}, "shutdownPolicy": {"Delete", "Retain"}}

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def validate(resource, where, version):
    try:
        kubernetes_validate.validate(resource, version, strict=True)
        print(f"ok   {where}: {resource['kind']}/{resource.get('metadata', {}).get('name', '?')}")
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.absolute_path)
        fail(f"{where}: {resource['kind']}: {path}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        fail(f"{where}: {e.message}")


def check_pod(spec, where, claim_templates=()):
    """The pod settings runbox's model relies on (docs/kubernetes.md explains each)."""
    pod_sc = spec.get("securityContext", {})
    want_pod = {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001}
    for key, value in want_pod.items():
        if pod_sc.get(key) != value:
            fail(f"{where}: securityContext.{key} is {pod_sc.get(key)!r}, not {value!r}")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{where}: the pod's seccompProfile is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        fail(f"{where}: automountServiceAccountToken is not false")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    names = set(volumes) | set(claim_templates)
    for c in spec.get("containers", []):
        sc = c.get("securityContext", {})
        for key, value in {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                           "runAsNonRoot": True, "runAsUser": 10001}.items():
            if sc.get(key) != value:
                fail(f"{where}: container {c['name']}: securityContext.{key} is {sc.get(key)!r}")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{where}: container {c['name']} does not drop ALL capabilities")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(f"{where}: container {c['name']}: seccompProfile is not RuntimeDefault")
        limits = c.get("resources", {}).get("limits", {})
        for key in ("cpu", "memory", "ephemeral-storage"):
            if key not in limits:
                fail(f"{where}: container {c['name']} has no {key} limit")
        for probe in ("livenessProbe", "readinessProbe"):
            if c.get(probe, {}).get("httpGet", {}).get("path") != "/healthz":
                fail(f"{where}: container {c['name']}: {probe} is not an HTTP GET of /healthz")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for m in mounts.values():
            if m not in names:
                fail(f"{where}: container {c['name']} mounts {m!r}, which no volume names")
        for path in ("/workspace", "/var/lib/runbox/audit", "/tmp", "/etc/runbox/tokens"):
            if path not in mounts:
                fail(f"{where}: nothing is mounted at {path}")
        tmp = volumes.get(mounts.get("/tmp"), {})
        if "emptyDir" not in tmp:
            fail(f"{where}: /tmp is not an emptyDir (runbox's scratch on a read-only root)")
        tokens = volumes.get(mounts.get("/etc/runbox/tokens"), {}).get("secret", {})
        if tokens.get("defaultMode") != 0o400:
            fail(f"{where}: the token Secret's defaultMode is not 0400 (0440 with fsGroup)")


def check_sandbox(sandbox, where, version):
    if sandbox.get("apiVersion") != "agents.x-k8s.io/v1beta1":
        fail(f"{where}: apiVersion is {sandbox.get('apiVersion')!r}")
    spec = sandbox.get("spec", {})
    unknown = set(spec) - SANDBOX_SPEC_FIELDS
    if unknown:
        fail(f"{where}: Sandbox spec fields the CRD does not have: {sorted(unknown)}")
    for key, allowed in SANDBOX_ENUMS.items():
        if key in spec and spec[key] not in allowed:
            fail(f"{where}: spec.{key} {spec[key]!r} is not one of {sorted(allowed)}")
    if "service" in spec and not isinstance(spec["service"], bool):
        fail(f"{where}: spec.service is not a boolean")
    template = spec.get("podTemplate")
    if not template:
        fail(f"{where}: spec.podTemplate is required")
        return
    validate({"apiVersion": "v1", "kind": "PodTemplate",
              "metadata": {"name": sandbox["metadata"]["name"]}, "template": template},
             f"{where} (spec.podTemplate)", version)
    claims = []
    for t in spec.get("volumeClaimTemplates", []):
        claims.append(t["metadata"]["name"])
        validate({"apiVersion": "v1", "kind": "PersistentVolumeClaim", **t},
                 f"{where} (volumeClaimTemplates)", version)
    check_pod(template.get("spec", {}), where, claims)


def check_policy(configmap, runbox):
    text = configmap["data"]["policy.toml"]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "policy.toml")
        with open(path, "w") as f:
            f.write(text)
        # The workspace and audit directory are the pod's; any existing directory stands in.
        r = subprocess.run([runbox, "check-config", "--config", path, "--workspace", d,
                            "--audit-dir", os.path.join(d, "audit")],
                           capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"configmap-policy.yaml: runbox check-config refuses the policy: {r.stderr.strip()}")
    else:
        print("ok   configmap-policy.yaml: runbox check-config accepts policy.toml")
        for want in ('isolation = "reaper"', 'mirror = "stdout"', 'listen = "0.0.0.0:8080"'):
            if want not in r.stdout:
                fail(f"configmap-policy.yaml: the effective policy lacks {want}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubernetes-version", default="1.34.0")
    ap.add_argument("--runbox", help="a runbox binary, to check the ConfigMap's policy")
    args = ap.parse_args()
    kustomization = load_all(os.path.join(HERE, "kustomization.yaml"))[0]
    resources = []
    for name in kustomization["resources"]:
        for r in load_all(os.path.join(HERE, name)):
            validate(r, name, args.kubernetes_version)
            resources.append((name, r))
    by_kind = {}
    for name, r in resources:
        by_kind.setdefault(r["kind"], []).append((name, r))
    for kind in ("Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment",
                 "Service", "NetworkPolicy"):
        if kind not in by_kind:
            fail(f"the kustomization has no {kind}")
    for name, d in by_kind.get("Deployment", []):
        check_pod(d["spec"]["template"]["spec"], name)
        if d["spec"].get("strategy", {}).get("type") != "Recreate":
            fail(f"{name}: the strategy is not Recreate (two pods on one workspace)")
    for name, n in by_kind.get("NetworkPolicy", []):
        if n["spec"].get("egress") != [] or "Egress" not in n["spec"].get("policyTypes", []):
            fail(f"{name}: egress is not denied")
        if not all(src.get("podSelector") for rule in n["spec"].get("ingress", [])
                   for src in rule.get("from", [])):
            fail(f"{name}: an ingress source is not selected by pod label")
    sandbox_dir = os.path.join(HERE, "sandbox")
    for name in sorted(os.listdir(sandbox_dir)):
        for r in load_all(os.path.join(sandbox_dir, name)):
            check_sandbox(r, f"sandbox/{name}", args.kubernetes_version)
    if args.runbox:
        for name, c in by_kind.get("ConfigMap", []):
            check_policy(c, args.runbox)
    print(f"{len(failures)} failed" if failures else "manifests: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
