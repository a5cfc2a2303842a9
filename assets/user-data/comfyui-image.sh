#!/usr/bin/env bash
# Makes the pinned ComfyUI image ($COMFYUI_IMAGE, tagged with the content hash of
# assets/comfyui/) present in Docker before ComfyUI starts (comfyui-image.service).
# Every wake starts a fresh instance, so this runs on every boot:
#  - cache hit: stream s3://$ASSET_BUCKET/cache/comfyui/<hash>.tar.zst through zstd
#    into `docker load` (S3 gateway endpoint, no registry, nothing from GitHub);
#  - cache miss (the first wake of a release) or a damaged cache object: build the image
#    from the build context CDK shipped ($COMFYUI_CONTEXT_URI), save it to a local file,
#    check it, then upload it, so a later wake never loads a half-written image.
# zstd frames carry a checksum: a truncated or corrupted download fails the load.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
load_env
require ASSET_BUCKET COMFYUI_IMAGE COMFYUI_IMAGE_HASH COMFYUI_CONTEXT_URI
[[ $COMFYUI_IMAGE_HASH =~ ^[0-9a-f]{16,64}$ ]] || die "COMFYUI_IMAGE_HASH must be a hex content hash, got '$COMFYUI_IMAGE_HASH'"

DATA_DIR=${DATA_DIR:-/opt/comfyui/data}
WORK_DIR=$DATA_DIR/image-build
CACHE_KEY=cache/comfyui/$COMFYUI_IMAGE_HASH.tar.zst
CACHE_URI=s3://$ASSET_BUCKET/$CACHE_KEY

present() { docker image inspect "$COMFYUI_IMAGE" >/dev/null 2>&1; }

cached() { aws s3api head-object --bucket "$ASSET_BUCKET" --key "$CACHE_KEY" >/dev/null 2>&1; }

load_from_cache() {
  log "loading $COMFYUI_IMAGE from $CACHE_URI"
  aws s3 cp "$CACHE_URI" - --only-show-errors | zstd -d -q | docker load -q
}

build_and_cache() {
  rm -rf "$WORK_DIR"
  mkdir -p "$WORK_DIR/context"
  log "building $COMFYUI_IMAGE from $COMFYUI_CONTEXT_URI (first wake of this release)"
  retry 3 aws s3 cp "$COMFYUI_CONTEXT_URI" "$WORK_DIR/context.zip" --only-show-errors
  python3 -m zipfile -e "$WORK_DIR/context.zip" "$WORK_DIR/context"
  docker build --pull -t "$COMFYUI_IMAGE" "$WORK_DIR/context"
  log "saving $COMFYUI_IMAGE to the image cache"
  docker save "$COMFYUI_IMAGE" | zstd -T0 -3 -q -o "$WORK_DIR/image.tar.zst"
  zstd -t -q "$WORK_DIR/image.tar.zst"
  # A whole-file upload: S3 makes the object visible only once it is complete.
  retry 3 aws s3 cp "$WORK_DIR/image.tar.zst" "$CACHE_URI" --only-show-errors
  log "cached $COMFYUI_IMAGE as $CACHE_URI ($(du -h "$WORK_DIR/image.tar.zst" | cut -f 1))"
  rm -rf "$WORK_DIR"
}

if present; then
  log "$COMFYUI_IMAGE is already present"
elif ! cached; then
  log "no cache object at $CACHE_URI yet"
  build_and_cache
elif load_from_cache && present; then
  log "loaded $COMFYUI_IMAGE from the image cache"
else
  log "the cache object at $CACHE_URI is damaged; rebuilding it"
  build_and_cache
fi
