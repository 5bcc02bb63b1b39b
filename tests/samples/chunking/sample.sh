#!/usr/bin/env bash
# Deploy helper.
set -euo pipefail

readonly TARGET="${1:-staging}"

# Print a message with a timestamp.
log() {
  echo "[$(date +%T)] $*"
}

function build {
  log "building"
  make all
}

deploy() {
  build
  log "deploying to $TARGET"
}

deploy
