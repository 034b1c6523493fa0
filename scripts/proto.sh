#!/usr/bin/env bash
# proto.sh regenerates the Go code for proto/ with buf and local plugins.
#
# buf's remote plugins and registry are unreachable from our machines, so the
# three tools are built from the Go module proxy at pinned versions into
# ${COSIGNER_TOOLS:-$HOME/.cache/cosigner-tools}/bin, outside the work tree,
# and only when missing or at another version. protoc-gen-go comes from
# google.golang.org/protobuf and must match its version in go.mod; the version
# of protoc-gen-go-grpc must require no newer google.golang.org/grpc than
# go.mod does.
#
# Usage: scripts/proto.sh            install the tools if needed, then generate
#        scripts/proto.sh --check    also fail if the committed code differs
set -euo pipefail

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12      # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2   # requires grpc v1.81.0 <= go.mod's v1.85.0

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${COSIGNER_TOOLS:-$HOME/.cache/cosigner-tools}
bin=$tools/bin
mkdir -p "$bin"
export PATH=$bin:$PATH

# have NAME VERSION: the tool is installed and reports VERSION (with or
# without the leading v).
have() {
	[ -x "$bin/$1" ] || return 1
	local got
	got=$("$bin/$1" --version 2>/dev/null) || return 1
	case "$got" in
	*"${2#v}"*) return 0 ;;
	*) return 1 ;;
	esac
}

install() {
	echo "proto.sh: installing $2 into $bin" >&2
	# Run outside the module so its go.mod is neither read nor edited.
	(cd "$tools" && GOBIN=$bin go install "$2")
}

have buf "$BUF_VERSION" || install buf "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
have protoc-gen-go "$PROTOC_GEN_GO_VERSION" ||
	install protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
have protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" ||
	install protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

cd "$root"
buf lint
# Generate into a clean tree so a renamed or deleted .proto leaves no stale
# .pb.go behind.
find proto -name '*.pb.go' -delete
buf generate

if [ "${1:-}" = --check ]; then
	if ! git diff --exit-code -- proto || [ -n "$(git status --porcelain -- proto)" ]; then
		echo "proto.sh: error: generated code in proto/ differs from what is committed" >&2
		echo "proto.sh: hint: run 'make proto' and commit the result" >&2
		exit 1
	fi
fi
