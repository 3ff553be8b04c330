#!/usr/bin/env python3
"""Times a few `shell` tool calls against a release runbox (docs/benchmarks.md, "The shell tool").

Usage: scripts/bench-shell.py DIR   (DIR gets ws/ with a 1 GB file `big`, audit/, cache/)
"""
import json, os, subprocess, sys, time

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/bench-shell")
binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "runbox")
for d in ("ws", "audit", "cache"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
big = os.path.join(root, "ws", "big")
if not os.path.exists(big):
    line = b"a" * 99 + b"\n"
    with open(big, "wb") as f:
        for _ in range(10_000_000):
            f.write(line)
p = subprocess.Popen([binary, "serve", "--allow-root", "--workspace", os.path.join(root, "ws"), "--audit-dir", os.path.join(root, "audit"), "--cache-dir", os.path.join(root, "cache")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
n = 0
def req(method, params):
    global n; n += 1
    p.stdin.write(json.dumps({"jsonrpc":"2.0","id":n,"method":method,"params":params})+"\n"); p.stdin.flush()
    while True:
        r = json.loads(p.stdout.readline())
        if r.get("id") == n: return r
req("initialize", {"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}})
p.stdin.write(json.dumps({"jsonrpc":"2.0","method":"notifications/initialized"})+"\n"); p.stdin.flush()
req("tools/call", {"name":"shell","arguments":{"script":"echo warm"}})
for script in ["cat big | head -1 | wc -c", "seq 1 100000000 | head -3", "cat big | cat | cat | cat | cat | cat | cat | wc -l", "for i in $(seq 1 200); do echo $i; done | wc -l", "i=0; while [ $i -lt 10000 ]; do i=$((i+1)); done; echo $i", "echo hi"]:
    ts = []
    for _ in range(3):
        t = time.time(); r = req("tools/call", {"name":"shell","arguments":{"script":script, "timeout_ms": 120000}}); ts.append(time.time()-t)
    sc = r["result"]["structuredContent"]
    print(f"{script!r}: median {sorted(ts)[1]*1000:.1f} ms  -> {str(sc.get('stdout', sc))[:60]!r}")
p.stdin.close(); p.wait()
