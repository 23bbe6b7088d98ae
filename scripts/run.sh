#!/usr/bin/env bash
# Starts asyncd on its embedded SQLite store in ./var and prints the README's simulation recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${ASYNCD_DATA:-./var}
listen=${ASYNCD_LISTEN:-127.0.0.1:9000}
admin=${ASYNCD_ADMIN_LISTEN:-127.0.0.1:9001}
mkdir -p "$data"
abs=$(realpath "$data")
cat <<MSG
asyncd: Cloud API on http://$listen, admin API on http://$admin, data in $data
asyncd: the credentials (AppId, Uin, SecretId, SecretKey, AdminToken) are in $abs/credentials.json
asyncd: try, in another terminal, from $(pwd): a simulated instance whose CreateAccounts stays
asyncd: RUNNING for 2 polls, then succeeds with Info "X" (docs/simulation.md)
MSG
if [ "$data" != ./var ] || [ "$listen" != 127.0.0.1:9000 ] || [ "$admin" != 127.0.0.1:9001 ]; then
    echo "export ASYNCD_ADMIN=$admin ASYNCD_CLOUD=$listen  # and read var/ below as $data"
fi
echo
# The recipe is the README's own block, so the two never disagree (tests/it/sim-instances runs it).
sed -n '/^<!-- recipe -->$/,/^<!-- \/recipe -->$/p' README.md | sed '1,2d;$d' | sed '$d'
echo
exec bin/asyncd --listen "$listen" --admin "$admin" --data "$data" "$@"
