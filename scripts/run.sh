#!/usr/bin/env bash
# Starts asyncd on its embedded SQLite store in ./var and prints the credentials and an example call.
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
asyncd: try, in another terminal, from $(pwd):

ID=\$(bin/asyncctl --data $data --json task create - <<JSON | jq -r .AsyncRequestId
{"product": "cdb", "region": "ap-guangzhou", "uin": "\$(jq -r .Uin $data/credentials.json)",
 "type": "Demo", "steps": [{"name": "hello", "do": {"exec": ["sh", "-c", "sleep 2; echo Dropped the database table successfully."]}}]}
JSON
)
bin/asyncctl --data $data task wait \$ID
NODE_PATH=tests/it/node_modules node -e "
  const tc = require('tencentcloud-sdk-nodejs'), c = require('$abs/credentials.json');
  new tc.cdb.v20170320.Client({credential: {secretId: c.SecretId, secretKey: c.SecretKey},
    region: 'ap-guangzhou', profile: {httpProfile: {endpoint: '$listen', protocol: 'http://'}}})
  .DescribeAsyncRequestInfo({AsyncRequestId: process.argv[1]}).then(console.log)" \$ID

MSG
exec bin/asyncd --listen "$listen" --admin "$admin" --data "$data" "$@"
