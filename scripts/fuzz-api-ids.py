"""Ids that exist, for scripts/fuzz-api: without them every operation on `/{id}` stops at 404.

As the demo staff member, start one demo visit and raise a panic on another (so there is an alert);
then write a schemathesis config that draws each `{id}` from the real ids half of the time (random
UUIDs and junk the rest).

Usage: fuzz-api-ids.py BASE_URL STAFF_TOKEN ADMIN_TOKEN CONFIG_PATH
"""

import datetime
import json
import sys
import urllib.request
import uuid

base, staff, admin, config = sys.argv[1:5]


def call(token, method, path, body=None):
    request = urllib.request.Request(base + path, method=method, headers={"Authorization": f"Bearer {token}"})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, data) as response:
        return json.load(response)


def send(token, session, kind, **fields):
    at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    event = {"id": str(uuid.uuid4()), "at": at, "type": kind, **fields}
    return call(token, "POST", f"/api/v1/sessions/{session}/events", {"events": [event]})


ready = [
    s
    for s in call(staff, "GET", "/api/v1/sessions?scope=mine")
    if s["status"] == "planned" and s["approval"]["status"] in ("not_required", "approved")
]
if len(ready) < 2:
    sys.exit(f"the demo staff member has {len(ready)} visits ready to start; 2 are needed")
send(staff, ready[0]["id"], "start", location=None)
send(staff, ready[1]["id"], "start", location=None)
send(staff, ready[1]["id"], "panic", location=None)

ids = {
    "sessions": [s["id"] for s in call(admin, "GET", "/api/v1/sessions?scope=school")],
    "alerts": [a["id"] for a in call(admin, "GET", "/api/v1/alerts")],
    "users": [u["id"] for u in call(admin, "GET", "/api/v1/users")],
    "plans": [p["id"] for p in call(admin, "GET", "/api/v1/escalation-plans")],
}
empty = [name for name, values in ids.items() if not values]
if empty:
    sys.exit(f"no ids to fuzz with for: {', '.join(empty)}")

lines = []
for name, values in ids.items():
    lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
# A review is marked by its session's id.
for prefix, name in [
    ("sessions", "sessions"),
    ("reviews", "sessions"),
    ("alerts", "alerts"),
    ("users", "users"),
    ("escalation-plans", "plans"),
]:
    regex = f"^/api/v1/{prefix}/\\{{id\\}}"
    lines += [
        "[[operations]]",
        f"include-path-regex = {json.dumps(regex)}",
        f'parameters = {{ "path.id" = {{ dictionary = "{name}", probability = 0.5 }} }}',
        "",
    ]
with open(config, "w") as out:
    out.write("\n".join(lines))
print(", ".join(f"{len(values)} {name}" for name, values in ids.items()))
