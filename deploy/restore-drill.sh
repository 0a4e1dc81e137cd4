#!/bin/bash
# The restore drill (docs/compliance.md): build the demo province in a scratch PostgreSQL
# database, back it up with pg_dump, restore it with pg_restore into a second scratch database,
# then check the restored copy with bangfu verify (figures against the ledger), audit-verify (the
# history chain against the exported heads) and audit-log --verify (the operation log's chain).
# Every step is timed; both scratch databases are dropped at the end.
#
#   PGHOST=127.0.0.1 PGUSER=postgres deploy/restore-drill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PGHOST="${PGHOST:-127.0.0.1}" PGUSER="${PGUSER:-postgres}" PGPORT="${PGPORT:-5432}"
SRC="bangfu_drill_src_$$"; DST="bangfu_drill_dst_$$"; DUMP="$(mktemp -d)/bangfu.dump"
export BANGFU_VAR_DIR="$(mktemp -d)"
cleanup() { dropdb --if-exists "$SRC"; dropdb --if-exists "$DST"; rm -rf "$(dirname "$DUMP")" "$BANGFU_VAR_DIR"; }
trap cleanup EXIT
createdb "$SRC"; createdb "$DST"
url() { echo "postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$1"; }
count() { psql -d "$1" -Atc "select count(*) from $2"; }
now() { date +%s.%N; }
BANGFU_DATABASE_URL="$(url "$SRC")" .venv/bin/bangfu demo > /dev/null
BANGFU_DATABASE_URL="$(url "$SRC")" .venv/bin/bangfu audit-export-head > /dev/null
echo "source: $(count "$SRC" record) records, $(count "$SRC" history) history rows, $(count "$SRC" oplog) audit log rows"
t0=$(now); pg_dump -Fc -f "$DUMP" "$SRC"
t1=$(now); pg_restore --exit-on-error -d "$DST" "$DUMP"
t2=$(now)
export BANGFU_DATABASE_URL="$(url "$DST")"
.venv/bin/bangfu verify
t3=$(now); .venv/bin/bangfu audit-verify
t4=$(now); .venv/bin/bangfu audit-log --verify
t5=$(now)
echo "restored: $(count "$DST" record) records, $(count "$DST" history) history rows, $(count "$DST" oplog) audit log rows"
echo "the restored log refuses DELETE: $(psql -d "$DST" -Atc 'delete from oplog' 2>&1 | head -1)"
printf "dump %.2f s (%s), restore %.2f s, verify %.2f s, audit-verify %.2f s, audit-log --verify %.2f s; total %.2f s\n" \
  "$(echo "$t1-$t0" | bc)" "$(du -h "$DUMP" | cut -f1)" "$(echo "$t2-$t1" | bc)" "$(echo "$t3-$t2" | bc)" \
  "$(echo "$t4-$t3" | bc)" "$(echo "$t5-$t4" | bc)" "$(echo "$t5-$t0" | bc)"
