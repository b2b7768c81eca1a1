#!/usr/bin/env python3
"""A stand-in for uhttpd + rpcd for the LuCI page test (tests/luci_page.rs).

Listens on 127.0.0.1 only (an ephemeral port, printed as "listening on
127.0.0.1:PORT") and serves:

  GET  /luci-static/...  files of the luci-app-b4d package (files/www)
  GET  /harness/...      the test harness (tests/luci)
  POST /ubus/            ubus JSON-RPC as uhttpd-mod-ubus speaks it: "call"
                         with [session, object, method, args], answered from
                         a file of replies recorded from the real b4d
                         ({"b4.status": [0, {...}], "b4.check": [8], ...};
                         {"sequence": [r1, r2]} answers r1 first, then r2
                         from the second call on),
                         after checking the package's rpcd ACL grants the call
                         (else JSON-RPC error -32002 "Access denied", as rpcd).

Every call is appended to the log file as one JSON line, so the test can see
what the page asked for.
"""

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TYPES = {".js": "application/javascript", ".html": "text/html", ".json": "application/json"}


def load_acl(path):
    """object -> set of methods granted (read and write) by an rpcd ACL file."""
    granted = {}
    with open(path) as f:
        for group in json.load(f).values():
            for kind in ("read", "write"):
                for obj, methods in group.get(kind, {}).get("ubus", {}).items():
                    granted.setdefault(obj, set()).update(methods)
    return granted


def make_handler(args, replies, acl):
    answered, lock = {}, threading.Lock()
    roots = {"/luci-static/": os.path.join(args.www, "luci-static"), "/harness/": args.harness}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            sys.stderr.write("http: " + (fmt % a) + "\n")

        def send(self, code, body, ctype):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            for prefix, root in roots.items():
                if path.startswith(prefix):
                    root = os.path.realpath(root)
                    file = os.path.realpath(os.path.join(root, path[len(prefix):]))
                    if file.startswith(root + os.sep) and os.path.isfile(file):
                        with open(file, "rb") as f:
                            body = f.read()
                        ctype = TYPES.get(os.path.splitext(file)[1], "application/octet-stream")
                        return self.send(200, body, ctype)
            self.send(404, b"not found\n", "text/plain")

        def call(self, req):
            frame = {"jsonrpc": "2.0", "id": req.get("id")}
            params = req.get("params")
            if req.get("method") != "call" or not isinstance(params, list) or len(params) != 4:
                frame["error"] = {"code": -32600, "message": "Invalid request"}
                return frame
            sid, obj, method, call_args = params
            with open(args.log, "a") as log:
                log.write(json.dumps({"session": sid, "object": obj, "method": method, "args": call_args}) + "\n")
            if method not in acl.get(obj, ()):
                frame["error"] = {"code": -32002, "message": "Access denied"}
                return frame
            key = obj + "." + method
            # ubus: 4 = object not found, 3 = method not found.
            result = replies.get(key, [3] if any(k.startswith(obj + ".") for k in replies) else [4])
            if isinstance(result, dict):
                with lock:
                    n = answered[key] = answered.get(key, 0) + 1
                result = result["sequence"][min(n, len(result["sequence"])) - 1]
            frame["result"] = result
            return frame

        def do_POST(self):
            if self.path.split("?", 1)[0].rstrip("/") != "/ubus":
                return self.send(404, b"not found\n", "text/plain")
            length = int(self.headers.get("Content-Length", "0"))
            try:
                req = json.loads(self.rfile.read(length))
            except ValueError:
                reply = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
            else:
                # LuCI batches calls made in the same frame into one array.
                reply = [self.call(r) for r in req] if isinstance(req, list) else self.call(req)
            self.send(200, json.dumps(reply).encode(), "application/json")

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--replies", required=True)
    p.add_argument("--acl", required=True)
    p.add_argument("--www", required=True)
    p.add_argument("--harness", required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()
    with open(args.replies) as f:
        replies = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, replies, load_acl(args.acl)))
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
