#!/bin/sh
# certbot --deploy-hook: copy a new certificate to the volume nginx reads;
# nginx/start.sh notices the change and reloads. certbot sets RENEWED_LINEAGE.
set -eu
: "${RENEWED_LINEAGE:?RENEWED_LINEAGE is set by certbot}"
name=${RENEWED_LINEAGE##*/}
dir=/tls/$name
umask 077
mkdir -p "$dir"
# Copy beside, then rename: nginx never reads a half-written file.
cp "$RENEWED_LINEAGE/privkey.pem" "$dir/privkey.pem.new"
cp "$RENEWED_LINEAGE/fullchain.pem" "$dir/fullchain.pem.new"
mv -f "$dir/privkey.pem.new" "$dir/privkey.pem"
mv -f "$dir/fullchain.pem.new" "$dir/fullchain.pem"
rm -f "$dir/placeholder"
echo "deploy-hook.sh: installed the certificate for $name"
