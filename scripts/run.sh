#!/usr/bin/env bash
# Starts asyncd on its embedded SQLite store in ./var and prints the credentials and an example call.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${ASYNCD_DATA:-./var}
listen=${ASYNCD_LISTEN:-127.0.0.1:9000}
admin=${ASYNCD_ADMIN_LISTEN:-127.0.0.1:9001}
mkdir -p "$data"
cat <<MSG
asyncd: starting on $listen (Cloud API) and $admin (admin API), data in $data
asyncd: credentials (SecretId, SecretKey, AdminToken) are in $data/credentials.json
asyncd: try, in another terminal:
  bin/asyncctl --data $data task create - <<'JSON'
  {"product":"cdb","region":"ap-guangzhou","uin":"\$(jq -r .Uin $data/credentials.json)",
   "type":"Demo","steps":[{"name":"hello","do":{"exec":["/bin/true"]}}]}
JSON
  (or: curl -s -H "Authorization: Bearer \$(jq -r .AdminToken $data/credentials.json)" \\
        -d '{"product":"cdb","region":"ap-guangzhou","uin":"UIN","type":"Demo",
             "steps":[{"name":"hello","do":{"exec":["/bin/true"]}}]}' http://$admin/v1/tasks)
  then query it with any Tencent Cloud SDK pointed at endpoint $listen over http://, e.g. Node:
    new (require('tencentcloud-sdk-nodejs').cdb.v20170320.Client)({credential:{secretId, secretKey},
      region:'ap-guangzhou', profile:{httpProfile:{endpoint:'$listen', protocol:'http://'}}})
      .DescribeAsyncRequestInfo({AsyncRequestId})
MSG
exec bin/asyncd --listen "$listen" --admin "$admin" --data "$data" "$@"
