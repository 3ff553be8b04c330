# Derives docker/seccomp-docker-default.json from podman's default seccomp profile
# (/usr/share/containers/seccomp.json, containers/common, Apache-2.0): see docker/README.md.
#   jq -f docker/seccomp-docker-default.jq /usr/share/containers/seccomp.json
# It changes only the rules below; every other rule is podman's, unchanged.

# Docker's default profile allows these only to a process with CAP_SYS_ADMIN; podman's allows
# them to every process. (bpf, setdomainname, ... are CAP_SYS_ADMIN-only in both already.)
def sys_admin_only: ["clone", "clone3", "fsconfig", "fsmount", "fsopen", "fspick", "mount",
  "mount_setattr", "move_mount", "open_tree", "setns", "syslog", "umount", "umount2", "unshare"];
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
# CLONE_NEWNET: Docker's mask for clone without CAP_SYS_ADMIN.
def namespace_flags: [131072, 33554432, 67108864, 134217728, 268435456, 536870912, 1073741824];
def no_admin: {"caps": ["CAP_SYS_ADMIN"]};

(.syscalls | map(select(.action == "SCMP_ACT_ALLOW" and (.args | length) == 0
  and .includes == {} and .excludes == {})) | .[0].names) as $open
| (sys_admin_only | map(select(. as $n | $open | index($n)))) as $moved
| .syscalls |= (
    map(
      if .action == "SCMP_ACT_ALLOW" and (.args | length) == 0 and .includes == {}
         and .excludes == {}
      then .names -= $moved
      else .names -= ["setns"] end
      | select(.names | length > 0))
    + [
      {"names": $moved, "action": "SCMP_ACT_ALLOW", "args": [],
       "comment": "runbox: as Docker's default, only with CAP_SYS_ADMIN",
       "includes": {"caps": ["CAP_SYS_ADMIN"]}, "excludes": {}},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
       "comment": "runbox: as Docker's default, clone without namespace flags (mask 0x7E020000)",
       "includes": {}, "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 1, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
       "comment": "runbox: as Docker's default, s390 passes clone's flags second",
       "includes": {"arches": ["s390", "s390x"]}, "excludes": no_admin}
    ]
    + [namespace_flags[] as $flag |
      {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
       "args": [{"index": 0, "value": $flag, "valueTwo": $flag, "op": "SCMP_CMP_MASKED_EQ"}],
       "comment": "runbox: clone with a namespace flag fails with EPERM, Docker's default errno",
       "includes": {}, "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}}]
    + [
      {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
       "comment": "runbox: as Docker's default, clone3 fails with ENOSYS so libc falls back to clone",
       "args": [], "includes": {}, "excludes": no_admin},
      {"names": ($moved - ["clone", "clone3"]), "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
       "comment": "runbox: refused with EPERM, Docker's default errno",
       "args": [], "includes": {}, "excludes": no_admin}
    ])
