#!/usr/bin/env bash
# The restore drill: dump every service's database, restore each dump into a scratch
# database beside it (drill_<time>_<service>, never the live one), compare the documents
# of every collection, then drop the scratch databases:
#   MONGO_BACKUP_URI=... deploy/drill.sh [--keep] [--service NAME]...
# Exit 0: every collection restored with the count it had; 1: a count differs (named);
# 3: a live database changed while it was dumped (run it at a quiet moment). Counting needs
# Python with pymongo ($PYTHON, default python3; the service image has both).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=backup/lib.sh
. "$here/backup/lib.sh"
PYTHON=${PYTHON:-python3}

keep=0
services=()
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1; shift ;;
        --service) services+=("${2:?--service needs a name}"); shift 2 ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (--keep, --service NAME)" ;;
    esac
done
choose_services "${services[@]}"
services=("${CHOSEN[@]}")
tools_config

work=$(mktemp -d)
stamp="drill_$(date -u +%Y%m%d%H%M%S)"
live=() scratch=()
for service in "${services[@]}"; do
    live+=("$(database_of "$service")")
    scratch+=("${stamp}_$service")
done
cleanup() {
    if [ "$keep" -eq 0 ]; then
        "$PYTHON" "$here/backup/count_documents.py" --drop --prefix "$stamp" "${scratch[@]}" >/dev/null || true
    fi
    rm -rf "$work" "$TOOLS_CONFIG"
}
trap cleanup EXIT

count() { "$PYTHON" "$here/backup/count_documents.py" "$@"; }

chosen=()
for service in "${services[@]}"; do chosen+=(--service "$service"); done
before=$(count "${live[@]}")
"$here/backup.sh" --out "$work" "${chosen[@]}"
after=$(count "${live[@]}")
for index in "${!services[@]}"; do
    echo "restoring ${live[$index]} into ${scratch[$index]}"
    mongorestore --config="$TOOLS_CONFIG" --gzip --archive="$work/${live[$index]}.archive.gz" \
        --nsFrom="${live[$index]}.*" --nsTo="${scratch[$index]}.*"
done
restored=$(count "${scratch[@]}")

pairs=()
for index in "${!services[@]}"; do pairs+=("${live[$index]}=${scratch[$index]}"); done
"$PYTHON" "$here/backup/count_documents.py" --compare "$before" "$after" "$restored" "${pairs[@]}"
