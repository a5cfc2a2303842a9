#!/bin/sh
# nginx entrypoint wrapper (root, inside nginx:alpine). It renders the gateway's
# bearer-token check from the environment (the token never lands in the
# bundle), reloads nginx whenever certbot replaces a certificate, then hands
# over to the image's own entrypoint.
set -eu

mkdir -p /etc/nginx/generated
if [ -n "${GATEWAY_TOKEN:-}" ]; then
  case $GATEWAY_TOKEN in
    *[!A-Za-z0-9_-]*)
      echo "start.sh: GATEWAY_TOKEN may only hold A-Z a-z 0-9 _ -" >&2
      exit 1 ;;
  esac
  # At most 128: nginx.conf sizes the map's hash buckets for that.
  if [ "${#GATEWAY_TOKEN}" -lt 32 ] || [ "${#GATEWAY_TOKEN}" -gt 128 ]; then
    echo "start.sh: GATEWAY_TOKEN must be 32 to 128 characters long" >&2
    exit 1
  fi
  (
    umask 077
    # shellcheck disable=SC2016 # $http_authorization and $gateway_authorized are nginx variables
    printf 'map $http_authorization $gateway_authorized {\n    default 0;\n    "Bearer %s" 1;\n}\n' \
      "$GATEWAY_TOKEN" > /etc/nginx/generated/gateway-auth.conf
  )
fi

fingerprint() {
  cat /etc/nginx/tls/*/fullchain.pem 2>/dev/null | md5sum
}

# certbot cannot signal this container, so poll the certificates once a minute.
watch_certificates() {
  last=$(fingerprint)
  while sleep 60; do
    now=$(fingerprint)
    if [ "$now" != "$last" ] && nginx -t -q && nginx -s reload; then
      last=$now
    fi
  done
}

watch_certificates &
exec /docker-entrypoint.sh "$@"
