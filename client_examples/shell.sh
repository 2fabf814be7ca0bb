#!/usr/bin/env bash
# Call the Loss Advisor service from the shell with `buf curl` (npm @bufbuild/buf, installed by
# `npm ci --prefix client_examples/node`) against server reflection; no Python and no generated code.
#
# Usage: client_examples/shell.sh [HOST:PORT]      (start a server first: advisor-cli serve)
set -euo pipefail
address=${1:-127.0.0.1:50051}
buf="$(dirname "$0")/node/node_modules/.bin/buf"
url="http://${address}"

echo "# services (reflection)"
"$buf" curl --protocol grpc --http2-prior-knowledge --list-services "$url"

echo "# validate a spec"
"$buf" curl --protocol grpc --http2-prior-knowledge \
  -d '{"spec_json": "{\"loss\": \"tversky\", \"params\": {\"fn_weight\": 0.8}}"}' \
  "$url/lossadvisor.v1.LossAdvisor/ValidateSpec"

echo "# rank by the rules alone (milliseconds)"
"$buf" curl --protocol grpc --http2-prior-knowledge \
  -d '{"task": {"heads": [{"type": "binary", "class_histogram": [950, 50]}]}, "options": {"trials": false}}' \
  "$url/lossadvisor.v1.LossAdvisor/Recommend"

echo "# recommend with quick trial fits, streaming progress (with a 60 s deadline)"
"$buf" curl --protocol grpc --http2-prior-knowledge --timeout 60s \
  -d '{"task": {"heads": [{"type": "multiclass", "class_histogram": [800, 150, 50]}]}, "options": {"epochs": 3}}' \
  "$url/lossadvisor.v1.LossAdvisor/RecommendStream"

echo "# an invalid request: INVALID_ARGUMENT with BadRequest field violations (-v shows the trailers)"
"$buf" curl --protocol grpc --http2-prior-knowledge \
  -d '{"task": {"heads": [{"type": "multiclass", "class_histogram": [5, 1], "metric": "dice"}]}}' \
  "$url/lossadvisor.v1.LossAdvisor/Recommend" || true
