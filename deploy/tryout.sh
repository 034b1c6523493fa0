#!/usr/bin/env bash
# Prepares deploy/.tryout/ for docker-compose.yml: a one-validator CometBFT
# chain whose key is split 2-of-3 into one cosigner home per container.
# These are the steps of docs/operations.md, with container names for hosts:
#   1. create the node and its chain (here: a fresh chain, height 0);
#   2. 'cosigner shard' the validator key with one --peer per cosigner;
#   3. take the key away from the node (here: a throwaway key takes its place);
#   4. 'cosigner state init' on every cosigner with the chain's height.
# Needs bin/cosigner (make build) and a cometbft binary (CMT=..., or built
# from the Go module proxy into the cache that make test uses).
set -euo pipefail
cd "$(dirname "$0")"

CMT_VERSION=${CMT_VERSION:-v0.38.17}
CACHE=${COSIGNER_TEST_CACHE:-$HOME/.cache/cosigner-test}
CMT=${CMT:-$CACHE/cometbft-$CMT_VERSION/cometbft}
COSIGNER=${COSIGNER:-../bin/cosigner}
CHAIN=${CHAIN:-tryout-1}
OUT=.tryout

if [ -e "$OUT" ]; then
  echo "tryout: $PWD/$OUT exists; remove it to start a fresh chain (it holds the try-out's key shares)" >&2
  exit 1
fi
if [ ! -x "$COSIGNER" ]; then
  echo "tryout: $COSIGNER not found; run 'make build' first" >&2
  exit 1
fi
if [ ! -x "$CMT" ]; then
  echo "tryout: building CometBFT $CMT_VERSION into $(dirname "$CMT") (once)"
  mkdir -p "$(dirname "$CMT")"
  GOBIN=$(cd "$(dirname "$CMT")" && pwd) go install "github.com/cometbft/cometbft/cmd/cometbft@$CMT_VERSION"
fi

mkdir -p "$OUT"
NODE=$OUT/node
"$CMT" init --home "$NODE" >/dev/null 2>&1
# The node listens for its signer on every interface of the compose network
# and serves RPC to the host through the published port.
sed -i \
  -e 's|^priv_validator_laddr = .*|priv_validator_laddr = "tcp://0.0.0.0:26659"|' \
  -e 's|^laddr = "tcp://127.0.0.1:26657"|laddr = "tcp://0.0.0.0:26657"|' \
  -e 's|^timeout_commit = .*|timeout_commit = "1s"|' \
  "$NODE/config/config.toml"
sed -i "s|\"chain_id\": \"[^\"]*\"|\"chain_id\": \"$CHAIN\"|" "$NODE/config/genesis.json"

"$COSIGNER" shard --key "$NODE/config/priv_validator_key.json" --threshold 2 --shares 3 \
  --out "$OUT/shards" --chain-id "$CHAIN" --node tcp://node:26659 \
  --peer cosigner-1:7100 --peer cosigner-2:7100 --peer cosigner-3:7100 >/dev/null

# The validator key now lives only as shares: the node gets a throwaway key
# it never signs with (CometBFT loads a key file even with a remote signer)
# and a fresh state.
rm "$NODE/config/priv_validator_key.json" "$NODE/data/priv_validator_state.json"
"$CMT" init --home "$OUT/throwaway" >/dev/null 2>&1
cp "$OUT/throwaway/config/priv_validator_key.json" "$NODE/config/"
cp "$OUT/throwaway/data/priv_validator_state.json" "$NODE/data/"
rm -rf "$OUT/throwaway"

for i in 1 2 3; do
  home=$OUT/shards/cosigner-$i
  # Metrics on the container's interface, published to the host's loopback
  # by docker-compose.yml (7112, 7122, 7132).
  sed -i 's|^listen = .*|listen = "0.0.0.0:7102"|' "$home/cosigner.toml"
  "$COSIGNER" state init --home "$home" --chain-id "$CHAIN" --height 0 >/dev/null
done
"$COSIGNER" keys show --home "$OUT/shards/cosigner-1" 2>/dev/null | grep -E '^(bech32|address):'

# The containers run as the owner of these files (they are 0600/0700).
printf 'COSIGNER_UID=%s\nCOSIGNER_GID=%s\nCMT_VERSION=%s\n' "$(id -u)" "$(id -g)" "$CMT_VERSION" > .env

cat <<MSG
tryout: ready in $PWD/$OUT (chain $CHAIN; the validator key exists only as 3 shares)
next:   docker compose -f deploy/docker-compose.yml up --build
        curl -s localhost:26657/status        # the height rises
        curl -s localhost:7112/metrics        # cosigner 1's metrics
        docker compose -f deploy/docker-compose.yml stop cosigner-1   # 2 of 3 still sign
MSG
