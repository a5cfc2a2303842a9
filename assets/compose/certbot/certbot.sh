#!/bin/sh
# Entrypoint of the certbot container (certbot/certbot image, Alpine).
#   run:    a self-signed placeholder per domain so nginx can start, then the
#           first Let's Encrypt certificate (HTTP-01 over nginx's webroot) and
#           a renew loop; deploy-hook.sh copies each new certificate to /tls.
#   health: every domain has a certificate (placeholder or real) in /tls.
set -eu

TLS_DIR=/tls
WEBROOT=/var/www/certbot
HOOK="sh /opt/certbot/deploy-hook.sh"
: "${CERTBOT_DOMAINS:?CERTBOT_DOMAINS (space-separated host names) is required}"
: "${CERTBOT_EMAIL:?CERTBOT_EMAIL is required}"

log() { echo "certbot.sh: $*"; }

placeholder() {
  dir=$TLS_DIR/$1
  if [ -s "$dir/fullchain.pem" ] && [ -s "$dir/privkey.pem" ]; then return 0; fi
  mkdir -p "$dir"
  (
    umask 077
    openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 30 \
      -subj "/CN=$1" -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
  )
  touch "$dir/placeholder"
  log "self-signed placeholder for $1"
}

# Let's Encrypt counts failed validations, so wait until nginx serves the webroot.
nginx_ready() {
  mkdir -p "$WEBROOT/.well-known/acme-challenge"
  echo ok > "$WEBROOT/.well-known/acme-challenge/probe"
  i=0
  while [ "$i" -lt 24 ]; do
    if wget -q -O /dev/null http://nginx/.well-known/acme-challenge/probe; then return 0; fi
    i=$((i + 1))
    sleep 5
  done
  return 1
}

issue() {
  certbot certonly --webroot -w "$WEBROOT" --cert-name "$1" -d "$1" \
    --email "$CERTBOT_EMAIL" --agree-tos --no-eff-email --non-interactive \
    --deploy-hook "$HOOK"
}

# The lineage exists but /tls holds a placeholder or an old copy (e.g. a new tls volume).
sync_copy() {
  live=/etc/letsencrypt/live/$1
  if ! cmp -s "$live/fullchain.pem" "$TLS_DIR/$1/fullchain.pem"; then
    RENEWED_LINEAGE=$live sh /opt/certbot/deploy-hook.sh
  fi
}

run() {
  for domain in $CERTBOT_DOMAINS; do placeholder "$domain"; done
  nginx_ready || log "nginx does not answer on port 80 yet; trying anyway"
  while :; do
    pending=0
    for domain in $CERTBOT_DOMAINS; do
      if [ -f "/etc/letsencrypt/renewal/$domain.conf" ]; then
        sync_copy "$domain"
      elif ! issue "$domain"; then
        pending=1
        log "no certificate for $domain yet (does its DNS point here?)"
      fi
    done
    certbot renew --webroot -w "$WEBROOT" --deploy-hook "$HOOK" --no-random-sleep-on-renew --quiet \
      || log "renewal failed; retrying later"
    # Retry missing certificates twice an hour (under Let's Encrypt's 5 failures/hour).
    if [ "$pending" = 1 ]; then sleep 1800; else sleep 43200; fi
  done
}

health() {
  for domain in $CERTBOT_DOMAINS; do
    [ -s "$TLS_DIR/$domain/fullchain.pem" ] || return 1
  done
}

case ${1:-run} in
  run) run ;;
  health) health ;;
  *) echo "usage: certbot.sh [run|health]" >&2; exit 2 ;;
esac
