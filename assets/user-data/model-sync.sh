#!/usr/bin/env bash
# Downloads s3://$ASSET_BUCKET/models/ into the data dir before ComfyUI starts
# (comfyui-model-sync.service). The instance store is empty after every stop.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require ASSET_BUCKET

DATA_DIR=${DATA_DIR:-/opt/comfyui/data}
mkdir -p "$DATA_DIR/models"
log "model sync s3://$ASSET_BUCKET/models/ -> $DATA_DIR/models/"
retry 3 aws s3 sync "s3://$ASSET_BUCKET/models/" "$DATA_DIR/models/" --no-progress --only-show-errors
log "model sync done: $(du -sh "$DATA_DIR/models" | cut -f 1)"
