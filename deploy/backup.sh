#!/usr/bin/env bash
# Dump each service's MongoDB database into its own gzip archive:
#   MONGO_BACKUP_URI=... deploy/backup.sh [--out DIR] [--service NAME]...
# DIR (default backups/<UTC time>) gets pingxuan_<service>.archive.gz per service and
# SHA256SUMS. The URI (user `backup`, roles backup and restore) is read from the environment
# and handed to the tools in a mode-600 file, never on a command line. Reads from a secondary
# when there is one, so the primary keeps its speed. deploy/README.md, "Backup and restore".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=backup/lib.sh
. "$here/backup/lib.sh"

out="backups/$(date -u +%Y%m%dT%H%M%SZ)"
services=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --service) services+=("${2:?--service needs a name}"); shift 2 ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (--out DIR, --service NAME)" ;;
    esac
done
choose_services "${services[@]}"
services=("${CHOSEN[@]}")
tools_config

umask 077
mkdir -p "$out"
for service in "${services[@]}"; do
    db="$(database_of "$service")"
    echo "dumping $db"
    mongodump --config="$TOOLS_CONFIG" --readPreference=secondaryPreferred \
        --db="$db" --gzip --archive="$out/$db.archive.gz"
done
(cd "$out" && sha256sum ./*.archive.gz >SHA256SUMS)
echo "backup in $out"
