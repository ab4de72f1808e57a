#!/usr/bin/env bash
# The protocol's floor for a set of blobs: every file of DIR (named by its sha256 hex) uploaded
# to 127.0.0.1:PORT/REPO at once, each as POST then one monolithic PUT, by curl — nothing read
# but the files, nothing hashed or compressed. The benches time it beside ocipush.
#
#   bash bench/curl_put.sh PORT REPO DIR
set -euo pipefail
port=$1 repo=$2 dir=$3
for f in "$dir"/*; do
    (
        loc=$(curl -sf -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
        case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
        sep='?'; case "$loc" in *\?*) sep='&' ;; esac
        curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$f" -o /dev/null "$loc${sep}digest=sha256:$(basename "$f")"
    ) &
done
wait
