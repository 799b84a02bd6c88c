#!/usr/bin/env bash
# Restore the archives of backup.sh, replacing each service's database:
#   MONGO_BACKUP_URI=... deploy/restore.sh DIR --yes [--service NAME]...
# Stop the services first (kubectl -n pingxuan scale deployment --all --replicas=0, or
# docker-compose stop nomination voting scoring aggregation notification): a service
# writing during the restore would mix old and new. Each database is dropped and restored
# from DIR/<database>.archive.gz, after SHA256SUMS is checked. deploy/README.md, "Backup and
# restore". To look at a backup without touching the live data, use drill.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=backup/lib.sh
. "$here/backup/lib.sh"

dir="" yes=0
services=()
while [ $# -gt 0 ]; do
    case "$1" in
        --yes) yes=1; shift ;;
        --service) services+=("${2:?--service needs a name}"); shift 2 ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        -*) die "unknown option $1 (DIR --yes, --service NAME)" ;;
        *) [ -z "$dir" ] || die "one backup directory only"; dir="$1"; shift ;;
    esac
done
[ -n "$dir" ] || die "name the backup directory (made by backup.sh)"
[ -f "$dir/SHA256SUMS" ] || die "$dir holds no SHA256SUMS: not a backup of backup.sh"
choose_services "${services[@]}"
services=("${CHOSEN[@]}")
for service in "${services[@]}"; do
    [ -f "$dir/$(database_of "$service").archive.gz" ] ||
        die "$dir has no archive of $(database_of "$service")"
done
(cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "$dir: an archive does not match SHA256SUMS"
[ "$yes" -eq 1 ] ||
    die "this replaces the live databases of: ${services[*]}; stop those services and add --yes"
tools_config

for service in "${services[@]}"; do
    db="$(database_of "$service")"
    echo "restoring $db"
    mongorestore --config="$TOOLS_CONFIG" --gzip --archive="$dir/$db.archive.gz" \
        --nsInclude="$db.*" --drop --writeConcern='{w: "majority"}'
done
echo "restored ${services[*]} from $dir; start the services again"
