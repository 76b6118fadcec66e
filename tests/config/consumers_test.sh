#!/usr/bin/env bash
# No field without effect: every setting the schema accepts and every device type the catalogue
# knows is either honoured by some code of this vmlaunch or refused at validate, and the code that
# does so says so itself (VML_CONSUMES / VML_REFUSES next to it, see base/field_use.h). No list is
# kept here: the schema is walked, and `vmlaunch schema --consumers` reports what the binary holds.
source tests/lib.sh
vmlaunch=launcher/vmlaunch
tmp=${TEST_TMPDIR:-$(mktemp -d)}

"$vmlaunch" schema >"$tmp/schema.json" && "$vmlaunch" schema --consumers >"$tmp/consumers.json"
check "schema --consumers prints JSON" python3 -m json.tool "$tmp/consumers.json" >/dev/null

cat >"$tmp/walk.py" <<'PY'
import json, sys
schema = json.load(open(sys.argv[1]))
consumers = json.load(open(sys.argv[2]))
defs = schema.get("definitions", {})
paths = set()

def walk(node, path, depth=0):
    if depth > 16 or not isinstance(node, dict):
        return
    if "if" in node or set(node) <= {"required", "description"}:  # conditions on settings, not settings
        return
    if "$ref" in node:
        walk(defs[node["$ref"].split("/")[-1]], path, depth + 1)
        return
    combined = False
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(key, []):
            walk(sub, path, depth + 1)
            combined = True
    extra = node.get("additionalProperties")
    if node.get("properties"):
        for key, sub in node["properties"].items():
            walk(sub, (path + "." if path else "") + key, depth + 1)
        if isinstance(extra, dict):
            walk(extra, path + ".*", depth + 1)
        return
    if isinstance(extra, dict):
        walk(extra, path + ".*", depth + 1)
        return
    items = node.get("items")
    if isinstance(items, dict) and ("properties" in items or "$ref" in items):
        walk(items, path + "[]", depth + 1)
        return
    if path and not combined:  # a choice between shapes is not itself a setting
        paths.add(path)

walk(schema, "")
declared = [f["path"] for f in consumers["fields"]]

def covered(path):
    for d in declared:
        if path == d or path.startswith(d + ".") or path.startswith(d + "["):
            return True
    return False

missing = sorted(p for p in paths if not covered(p))
for p in missing:
    print("no consumer: " + p)
# A declaration must name something the schema has (typos would cover nothing).
for d in sorted(set(declared)):
    if d.startswith("device-type:"):
        continue
    if not any(p == d or p.startswith(d + ".") or p.startswith(d + "[") for p in paths):
        print("declared but not in the schema: " + d)
for t in consumers["device_types"]:
    ok = t["model"] or t["not_yet"] or ("device-type:" + t["name"]) in declared
    if not ok:
        print("device type without a builder or a refusal: " + t["name"])
print("paths=%d declared=%d" % (len(paths), len(declared)))
PY
python3 "$tmp/walk.py" "$tmp/schema.json" "$tmp/consumers.json" >"$tmp/report"
cat "$tmp/report"
check "the schema has many settings (the walk works)" bash -c "grep -qE '^paths=([5-9][0-9]|[0-9]{3,}) ' '$tmp/report'"
check "every schema setting has code that honours or refuses it" bash -c "! grep -q '^no consumer:' '$tmp/report'"
check "every declared setting exists in the schema" bash -c "! grep -q '^declared but not in the schema:' '$tmp/report'"
check "every catalogue device type is built or refused" bash -c "! grep -q '^device type without' '$tmp/report'"

# The check can fail: a setting nobody declares is found.
python3 - "$tmp/schema.json" >"$tmp/schema-plus.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["definitions"]["boot"]["properties"]["splash"] = {"type": "string"}
print(json.dumps(s))
PY
python3 "$tmp/walk.py" "$tmp/schema-plus.json" "$tmp/consumers.json" >"$tmp/report-plus"
check "a schema setting that no code declares is reported" grep -qx "no consumer: boot.splash" "$tmp/report-plus"
finish
