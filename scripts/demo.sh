#!/usr/bin/env bash
# make demo: a local single-validator CometBFT chain whose only signer is a
# 2-of-3 cosigner cluster on loopback (DEMO_MODE=softsign: one cosigner with
# the whole key). Ctrl-C stops everything.
#
# The steps are the ones an operator takes to move a validator key off a
# node: shard the node's key (or import it for softsign), initialise the
# sign state, point the node's priv_validator_laddr at cosigner, start all.
# In the threshold demo the leader is killed halfway (DEMO_KILL=0 keeps it):
# the chain goes on with the two others.
set -euo pipefail
cd "$(dirname "$0")/.."

CMT_VERSION=${CMT_VERSION:-v0.38.17}
CACHE=${COSIGNER_TEST_CACHE:-$HOME/.cache/cosigner-test}
CMT=$CACHE/cometbft-$CMT_VERSION/cometbft
DEMO=${DEMO_DIR:-$PWD/.demo}
COSIGNER=$PWD/bin/cosigner
CHAIN=demo-1
PV_PORT=${PV_PORT:-36659}
RPC_PORT=${RPC_PORT:-36657}
P2P_PORT=${P2P_PORT:-36656}

if [ ! -x "$CMT" ]; then
  echo "demo: building CometBFT $CMT_VERSION from the Go module proxy into $CACHE (once)"
  mkdir -p "$(dirname "$CMT")"
  GOBIN=$(dirname "$CMT") go install "github.com/cometbft/cometbft/cmd/cometbft@$CMT_VERSION"
fi
[ -x "$COSIGNER" ] || make build

rm -rf "$DEMO"
mkdir -p "$DEMO"
NODE=$DEMO/node
SIGNER=$DEMO/cosigner

echo "demo: creating chain $CHAIN in $NODE"
"$CMT" init --home "$NODE" >/dev/null 2>&1
cfg=$NODE/config/config.toml
sed -i \
  -e "s|^priv_validator_laddr = .*|priv_validator_laddr = \"tcp://127.0.0.1:$PV_PORT\"|" \
  -e "s|^laddr = \"tcp://127.0.0.1:26657\"|laddr = \"tcp://127.0.0.1:$RPC_PORT\"|" \
  -e "s|^laddr = \"tcp://0.0.0.0:26656\"|laddr = \"tcp://127.0.0.1:$P2P_PORT\"|" \
  -e "s|^timeout_commit = .*|timeout_commit = \"500ms\"|" \
  -e "s|^timeout_propose = .*|timeout_propose = \"1s\"|" \
  "$cfg"
# The chain id and vote extensions from height 2 (CometBFT 0.38).
python3 - "$NODE/config/genesis.json" "$CHAIN" <<'PY'
import json, sys
p, chain = sys.argv[1], sys.argv[2]
g = json.load(open(p))
g["chain_id"] = chain
abci = g.setdefault("consensus_params", {}).setdefault("abci", {})
abci["vote_extensions_enable_height"] = "2"
json.dump(g, open(p, "w"), indent=2)
PY

DEMO_MODE=${DEMO_MODE:-threshold}
homes=()
if [ "$DEMO_MODE" = softsign ]; then
  echo "demo: moving the validator key from the node to one cosigner (softsign)"
  "$COSIGNER" init --home "$SIGNER" --chain-id "$CHAIN" --node "tcp://127.0.0.1:$PV_PORT"
  "$COSIGNER" keys import --home "$SIGNER" "$NODE/config/priv_validator_key.json"
  homes=("$SIGNER")
else
  echo "demo: splitting the validator key 2-of-3 (no cosigner holds it whole)"
  "$COSIGNER" shard --key "$NODE/config/priv_validator_key.json" --threshold 2 --shares 3 \
    --out "$DEMO/shards" --chain-id "$CHAIN" --node "tcp://127.0.0.1:$PV_PORT"
  homes=("$DEMO/shards/cosigner-1" "$DEMO/shards/cosigner-2" "$DEMO/shards/cosigner-3")
fi
# The node keeps a key file it must never use: replace it with a throwaway one.
rm "$NODE/config/priv_validator_key.json" "$NODE/data/priv_validator_state.json"
"$CMT" init --home "$DEMO/throwaway" >/dev/null 2>&1
cp "$DEMO/throwaway/config/priv_validator_key.json" "$NODE/config/"
cp "$DEMO/throwaway/data/priv_validator_state.json" "$NODE/data/"
for h in "${homes[@]}"; do
  "$COSIGNER" state init --home "$h" --chain-id "$CHAIN" --height 0 >/dev/null
done
"$COSIGNER" keys show --home "${homes[0]}"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  for h in "${homes[@]}"; do "$COSIGNER" state show --home "$h" || true; done
}
trap cleanup INT TERM EXIT

# cosigner dials first: the node asks for the key once at start.
declare -A cpid
for i in "${!homes[@]}"; do
  "$COSIGNER" start --home "${homes[$i]}" 2> "$DEMO/cosigner-$((i+1)).log" &
  cpid[$((i+1))]=$!
  pids+=($!)
done
"$CMT" start --home "$NODE" --proxy_app kvstore > "$DEMO/node.log" 2>&1 &
pids+=($!)

height() {
  curl -s "http://127.0.0.1:$RPC_PORT/status" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["sync_info"]["latest_block_height"])' 2>/dev/null || echo 0
}
leader() { grep -l 'leading: dialing nodes' "$DEMO"/cosigner-*.log 2>/dev/null | tail -n 1 | sed 's/.*cosigner-\([0-9]*\).log/\1/'; }

echo "demo: node RPC on http://127.0.0.1:$RPC_PORT, logs in $DEMO; Ctrl-C stops"
# tail is the background job (killing it ends the filter behind it, which
# reads to end of file); a plain pipeline would leave tail running.
tail -q -n +1 -F "$DEMO"/cosigner-*.log 2>/dev/null > >(grep --line-buffered 'signed precommit' | sed -u 's/^time=[^ ]* level=INFO msg=//') &
pids+=($!)
DEMO_SECONDS=${DEMO_SECONDS:-0}
DEMO_KILL=${DEMO_KILL:-1}
start=$SECONDS
killed=""
while [ "$DEMO_SECONDS" -eq 0 ] || [ $((SECONDS - start)) -lt "$DEMO_SECONDS" ]; do
  sleep 1
  if [ "$DEMO_MODE" != softsign ] && [ "$DEMO_KILL" = 1 ] && [ -z "$killed" ] && [ "$(height)" -ge 15 ]; then
    l=$(leader)
    if [ -n "$l" ]; then
      echo "demo: === killing the leader, cosigner $l (SIGKILL) at height $(height); the other two go on ==="
      kill -9 "${cpid[$l]}" 2>/dev/null || true
      killed=$l
    fi
  fi
done
h=$(height)
echo "demo: chain at height $h after ${DEMO_SECONDS}s${killed:+ (cosigner $killed was killed)}"
[ "$h" -gt 1 ]
