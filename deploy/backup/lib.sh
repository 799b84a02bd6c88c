# Shared by backup.sh, restore.sh and drill.sh (sourced, not run).
# shellcheck shell=bash

#: The five services; each keeps its own database, named like the ConfigMap names it.
SERVICES=(nomination voting scoring aggregation notification)

die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

#: The database of one service: <NAME>_MONGO_DB, or pingxuan_<service>.
database_of() {
    local variable
    variable="$(echo "$1" | tr '[:lower:]' '[:upper:]')_MONGO_DB"
    echo "${!variable:-pingxuan_$1}"
}

#: Check the URI is given and write the tools' config file (mode 600) for it: the password
#: then appears in no command line (ps, shell history). Sets TOOLS_CONFIG; removed on exit.
tools_config() {
    [ -n "${MONGO_BACKUP_URI:-}" ] ||
        die "set MONGO_BACKUP_URI (mongodb://backup:<password>@host1,host2,host3/?replicaSet=rs0&authSource=admin; deploy/README.md, \"Backup and restore\")"
    if ! command -v mongodump >/dev/null || ! command -v mongorestore >/dev/null; then
        die "mongodump and mongorestore are needed (MongoDB Database Tools 100.3 or later)"
    fi
    TOOLS_CONFIG=$(mktemp)
    chmod 600 "$TOOLS_CONFIG"
    # shellcheck disable=SC2064  # the file's name is fixed now, on purpose
    trap "rm -f '$TOOLS_CONFIG'" EXIT
    # YAML double-quoted: a URI holds no double quote or backslash (it would be %-escaped).
    case "$MONGO_BACKUP_URI" in *'"'* | *\\*) die "MONGO_BACKUP_URI holds a quote or backslash" ;; esac
    printf 'uri: "%s"\n' "$MONGO_BACKUP_URI" >"$TOOLS_CONFIG"
}

#: The services chosen by --service (default: all five), checked against the list, into
#: CHOSEN (not echoed: a refusal inside a command substitution would not stop the script).
choose_services() {
    local name known
    CHOSEN=("$@")
    [ ${#CHOSEN[@]} -gt 0 ] || CHOSEN=("${SERVICES[@]}")
    for name in "${CHOSEN[@]}"; do
        for known in "${SERVICES[@]}"; do [ "$name" = "$known" ] && continue 2; done
        die "unknown service $name (one of ${SERVICES[*]})"
    done
}
