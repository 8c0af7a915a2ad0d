#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the repository's real fixtures (and fuzz/seeds/).
# Run from anywhere: fuzz/seed.sh. The corpus is generated, never committed.
#
# A webhook target's input is one selector byte (the index of the event name in the lists
# of fuzz/src/lib.rs, which the lists below repeat in the same order) followed by the body.
set -euo pipefail

fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
data="$root/tests/data"
corpus="$fuzz/corpus"

github_events=(push pull_request issue_comment pull_request_review ping status check_run check_suite)
cloud_events=(repo:push pullrequest:created pullrequest:updated pullrequest:fulfilled
    pullrequest:rejected pullrequest:approved pullrequest:unapproved
    pullrequest:changes_request_created pullrequest:comment_created)
server_events=(repo:refs_changed pr:opened pr:from_ref_updated pr:merged pr:declined pr:deleted
    pr:modified pr:reviewer:approved pr:reviewer:unapproved pr:reviewer:needs_work
    pr:comment:added diagnostics:ping)

# index NAME LIST... : the position of NAME in LIST, 255 (no header) when absent.
index() {
    local name="$1" i=0
    shift
    for event in "$@"; do
        if [ "$event" = "$name" ]; then
            echo "$i"
            return
        fi
        i=$((i + 1))
    done
    echo 255
}

# seed TARGET INDEX FILE : writes the selector byte then FILE into the target's corpus.
seed() {
    local out
    out="$corpus/$1/$(basename "$3")"
    { printf "\\$(printf '%03o' "$2")"; cat "$3"; } >"$out"
}

mkdir -p "$corpus"/{command,github_webhook,bitbucket_cloud_webhook,bitbucket_server_webhook,jenkins_notification,config,report_body}

# GitHub: the event name is the file name up to the first dot (pull_request.closed.json).
for f in "$data"/github/*.json; do
    name="$(basename "$f")"
    [ "$name" = openapi-subset.json ] && continue
    seed github_webhook "$(index "${name%%.*}" "${github_events[@]}")" "$f"
done

# Bitbucket Cloud: repo_push.json → repo:push, pullrequest_comment_created.json →
# pullrequest:comment_created (the first underscore is the colon).
for f in "$data"/bitbucket-cloud/*.json; do
    stem="$(basename "$f")"
    stem="${stem%%.*}"
    seed bitbucket_cloud_webhook "$(index "${stem/_/:}" "${cloud_events[@]}")" "$f"
done

# Bitbucket Server: every underscore but those of from_ref_updated, refs_changed and
# needs_work is a colon; the payloads also carry eventKey, so the no-header form is seeded too.
for f in "$data"/bitbucket-server/*.json; do
    stem="$(basename "$f")"
    stem="${stem%%.*}"
    key="$(echo "$stem" | sed -e 's/_/:/g' -e 's/from:ref:updated/from_ref_updated/' \
        -e 's/refs:changed/refs_changed/' -e 's/needs:work/needs_work/')"
    seed bitbucket_server_webhook "$(index "$key" "${server_events[@]}")" "$f"
    out="$corpus/bitbucket_server_webhook/noheader.$(basename "$f")"
    { printf '\377'; cat "$f"; } >"$out"
done

# Jenkins: Notification-plugin callbacks, plus the remote-API JSON (near misses).
cp "$data"/jenkins/notification/*.json "$data"/jenkins/remote-api/*.json "$corpus/jenkins_notification/"

# Config: the example, the test configurations and the YAML of the config tests.
cp "$root/config.yaml.example" "$root"/crates/greg-config/tests/data/*.yaml "$corpus/config/"

# ... and every raw string of the config tests (BASE, the secret-file YAML, ...).
awk -v out="$corpus/config/test-" '
    /r#"/ { inside = 1; n++; sub(/.*r#"/, ""); }
    inside && /"#/ { sub(/"#.*/, ""); print > (out n ".yaml"); inside = 0; next }
    inside { print > (out n ".yaml") }
' "$root"/crates/greg-config/tests/*.rs

# Commands: every string literal that addresses the bot in the grammar's tests.
n=0
grep -ho '"[^"]*@greg[^"]*"' "$root"/crates/greg-command/tests/*.rs | while IFS= read -r literal; do
    n=$((n + 1))
    literal="${literal#\"}"
    printf '%b' "${literal%\"}" >"$corpus/command/test-$n.md"
done

# Hand-picked seeds (fuzz/seeds/<target>/), already in the target's input format.
if [ -d "$fuzz/seeds" ]; then
    for dir in "$fuzz"/seeds/*/; do
        target="$(basename "$dir")"
        mkdir -p "$corpus/$target"
        cp "$dir"* "$corpus/$target/"
    done
fi

for dir in "$corpus"/*/; do
    echo "$(basename "$dir"): $(find "$dir" -type f | wc -l) files"
done

# Reports: each real JUnit file of greg-report's tests wrapped in a POST /api/reports body.
for f in "$root"/crates/greg-report/tests/data/junit/*.xml; do
    python3 -c 'import json, sys; print(json.dumps({"repo": "acme/widgets", "sha": "0" * 40, "job": "unit", "status": "failure", "junit": [{"name": sys.argv[1], "xml": open(sys.argv[1], encoding="utf-8").read()}]}))' "$f" \
        >"$corpus/report_body/$(basename "$f").json"
done
