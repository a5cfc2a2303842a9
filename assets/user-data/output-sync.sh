#!/usr/bin/env bash
# Uploads ComfyUI's outputs to s3://$ASSET_BUCKET/generated/<instance-id>/.
# Run by comfyui-output-sync.timer, at shutdown by comfyui-output-flush.service
# and once by the Spot interruption handler. Never deletes anything in S3.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require ASSET_BUCKET

DATA_DIR=${DATA_DIR:-/opt/comfyui/data}
[[ -d $DATA_DIR/output ]] || { log "no $DATA_DIR/output yet, nothing to sync"; exit 0; }
iid=$(instance_id) || die "could not read the instance id from IMDS"
target=s3://$ASSET_BUCKET/generated/$iid/
log "output sync $DATA_DIR/output/ -> $target"
# --no-follow-symlinks: the container writes this dir; a link it plants must not make root upload host files.
retry 3 aws s3 sync "$DATA_DIR/output/" "$target" --no-follow-symlinks --no-progress --only-show-errors
log "output sync done"
