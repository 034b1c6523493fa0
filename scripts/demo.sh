#!/usr/bin/env bash
# make demo: a local single-validator CometBFT chain whose only signer is
# cosigner in softsign mode, on loopback. Ctrl-C stops everything.
#
# The steps are the ones an operator takes to move a validator key off a
# node: init a cosigner home, import the node's key, initialise the sign
# state, point the node's priv_validator_laddr at cosigner, start both.
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

echo "demo: moving the validator key from the node to cosigner"
"$COSIGNER" init --home "$SIGNER" --chain-id "$CHAIN" --node "tcp://127.0.0.1:$PV_PORT"
"$COSIGNER" keys import --home "$SIGNER" "$NODE/config/priv_validator_key.json"
# The node keeps a key file it must never use: replace it with a throwaway one.
rm "$NODE/config/priv_validator_key.json" "$NODE/data/priv_validator_state.json"
"$CMT" gen-validator --home "$DEMO/throwaway" > /dev/null 2>&1 || true
"$CMT" init --home "$DEMO/throwaway" >/dev/null 2>&1
cp "$DEMO/throwaway/config/priv_validator_key.json" "$NODE/config/"
cp "$DEMO/throwaway/data/priv_validator_state.json" "$NODE/data/"
"$COSIGNER" state init --home "$SIGNER" --chain-id "$CHAIN" --height 0
"$COSIGNER" keys show --home "$SIGNER"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  "$COSIGNER" state show --home "$SIGNER" || true
}
trap cleanup INT TERM EXIT

# cosigner dials first: the node asks for the key once at start.
"$COSIGNER" start --home "$SIGNER" 2> "$DEMO/cosigner.log" &
pids+=($!)
"$CMT" start --home "$NODE" --proxy_app kvstore > "$DEMO/node.log" 2>&1 &
pids+=($!)

echo "demo: node RPC on http://127.0.0.1:$RPC_PORT, logs in $DEMO; Ctrl-C stops"
DEMO_SECONDS=${DEMO_SECONDS:-0}
if [ "$DEMO_SECONDS" -gt 0 ]; then
  timeout "$DEMO_SECONDS" tail -n +1 -F "$DEMO/cosigner.log" | grep --line-buffered 'signed precommit' || true
  height=$(curl -s "http://127.0.0.1:$RPC_PORT/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["sync_info"]["latest_block_height"])')
  echo "demo: chain at height $height after ${DEMO_SECONDS}s"
  [ "$height" -gt 1 ]
else
  tail -n +1 -F "$DEMO/cosigner.log" | grep --line-buffered 'signed precommit'
fi
