#!/usr/bin/env python3
"""Checks Hearth's API responses against Firecracker's API description.

Starts `hearth --api-sock`, sends one request per endpoint Hearth serves (good and bad, before
and after InstanceStart), and validates each response: the status code must be one the
description lists for that operation (or its `default`), and the body must match the schema
given for that status (204: no body; errors: the Error schema with a string fault_message).
Exits non-zero naming every mismatch.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import yaml


def http(sock_path, method, path, body=None, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    data = body.encode() if body is not None else b""
    req = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if body is not None:
        req += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    s.sendall(req.encode() + b"\r\n" + data)
    raw = b""
    while True:
        head_end = raw.find(b"\r\n\r\n")
        if head_end >= 0:
            headers = raw[:head_end].decode().lower()
            length = 0
            for line in headers.split("\r\n")[1:]:
                if line.startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if len(raw) >= head_end + 4 + length:
                break
        chunk = s.recv(65536)
        if not chunk:
            break
        raw += chunk
    s.close()
    status = int(raw.split(b" ", 2)[1])
    head_end = raw.find(b"\r\n\r\n")
    return status, raw[head_end + 4:].decode()


def resolve(spec, schema):
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["definitions"][name]
    return schema


def validate(spec, schema, value, where):
    """A validator for the subset of Swagger 2.0 the description uses."""
    errors = []
    schema = resolve(spec, schema)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{where}: required property '{req}' missing")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key not in props:
                if schema.get("additionalProperties") is False or props:
                    errors.append(f"{where}: property '{key}' is not in the schema")
                continue
            errors += validate(spec, props[key], item, f"{where}.{key}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array"]
        for i, item in enumerate(value):
            errors += validate(spec, schema.get("items", {}), item, f"{where}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string, got {value!r}")
        elif "enum" in schema and value not in schema["enum"]:
            errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{where}: expected an integer, got {value!r}")
        else:
            if "minimum" in schema and value < schema["minimum"]:
                errors.append(f"{where}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                errors.append(f"{where}: {value} > maximum {schema['maximum']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean, got {value!r}")
    return errors


def operation(spec, method, path):
    paths = spec["paths"]
    if path in paths:
        return paths[path].get(method.lower())
    for template, item in paths.items():
        if "{" in template:
            prefix = template.split("{")[0]
            if path.startswith(prefix) and "/" not in path[len(prefix):]:
                return item.get(method.lower())
    return None


def check(spec, method, path, status, body, failures):
    where = f"{method} {path} -> {status}"
    op = operation(spec, method, path)
    responses = op["responses"] if op else {}
    entry = responses.get(status) or responses.get(str(status)) or responses.get("default")
    if op is None:
        # Paths the description does not have: must be a 400 with the Error shape.
        entry = {"schema": {"$ref": "#/definitions/Error"}} if status == 400 else None
    if entry is None:
        failures.append(f"{where}: status not allowed by the API description")
        return
    schema = entry.get("schema")
    if schema is None:
        if body:
            failures.append(f"{where}: expected no body, got {body!r}")
        return
    try:
        value = json.loads(body)
    except ValueError:
        failures.append(f"{where}: body is not JSON: {body!r}")
        return
    errors = validate(spec, schema, value, "body")
    if status >= 400 and not (isinstance(value, dict) and isinstance(value.get("fault_message"), str)):
        errors.append("body: an error without a string fault_message")
    failures += [f"{where}: {e}" for e in errors]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hearth", required=True)
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--api-yaml", required=True)
    args = parser.parse_args()
    with open(args.api_yaml) as f:
        spec = yaml.safe_load(f)

    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "api.sock")
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(1 << 20)
        proc = subprocess.Popen([args.hearth, "--api-sock", sock], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            for _ in range(1000):
                if os.path.exists(sock):
                    break
                time.sleep(0.01)
            kernel = json.dumps(args.kernel)
            requests = [
                ("GET", "/", None), ("GET", "/version", None), ("GET", "/machine-config", None),
                ("GET", "/vm/config", None),
                ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 32}'),
                ("PATCH", "/machine-config", '{"mem_size_mib": 64}'),
                ("PUT", "/machine-config", '{"vcpu_count": 0, "mem_size_mib": 32}'),
                ("PUT", "/boot-source", '{"kernel_image_path": ' + kernel + '}'),
                ("PUT", "/boot-source", '{"kernel_image_path": "/nonexistent"}'),
                ("PUT", "/drives/scratch", json.dumps({"drive_id": "scratch", "path_on_host": disk,
                                                       "is_root_device": False, "is_read_only": False})),
                ("PUT", "/drives/scratch", '{"drive_id": "scratch"}'),
                ("PUT", "/network-interfaces/eth0", '{"iface_id": "eth1", "host_dev_name": "tap0"}'),
                ("PUT", "/vsock", '{"guest_cid": 1, "uds_path": "/tmp/x"}'),
                ("PUT", "/logger", '{"level": "Info"}'),
                ("PUT", "/metrics", json.dumps({"metrics_path": os.path.join(tmp, "m.json")})),
                ("PUT", "/actions", '{"action_type": "FlushMetrics"}'),
                ("PUT", "/balloon", '{"amount_mib": 1, "deflate_on_oom": false}'),
                ("GET", "/mmds", None),
                ("PATCH", "/vm", '{"state": "Paused"}'),
                ("PUT", "/snapshot/create", '{"snapshot_path": "/s", "mem_file_path": "/m"}'),
                ("PUT", "/unknown", "{}"),
                ("GET", "/", "{}"),
                ("GET", "/vm/config", None),
                ("PUT", "/actions", '{"action_type": "InstanceStart"}'),
                ("GET", "/", None),
                ("PUT", "/actions", '{"action_type": "InstanceStart"}'),
                ("PATCH", "/vm", '{"state": "Paused"}'),
                ("GET", "/", None),
                ("PATCH", "/vm", '{"state": "Resumed"}'),
                ("PATCH", "/vm", '{"state": "Stopped"}'),
                ("PUT", "/snapshot/load", '{"snapshot_path": "/s", "mem_file_path": "/m"}'),
                ("PATCH", "/drives/scratch", json.dumps({"drive_id": "scratch", "path_on_host": disk})),
                ("PUT", "/actions", '{"action_type": "SendCtrlAltDel"}'),
                ("GET", "/machine-config", None), ("GET", "/vm/config", None), ("GET", "/version", None),
            ]
            failures = []
            statuses = []
            for method, path, body in requests:
                status, resp = http(sock, method, path, body)
                statuses.append(status)
                check(spec, method, path, status, resp, failures)
            # Sanity: the sequence exercised successes and failures on both sides of boot.
            if 204 not in statuses or 200 not in statuses or 400 not in statuses:
                failures.append(f"unexpected status mix: {statuses}")
            if proc.poll() is not None:
                failures.append(f"hearth exited with {proc.returncode} during the checks")
        finally:
            proc.kill()
            proc.wait()
    for f in failures:
        print("MISMATCH:", f)
    print(f"checked {len(requests)} responses, {len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
