#!/usr/bin/env bash
# Makes a development CA and node certificates for mutual TLS between backprop nodes (openssl).
#
#   deploy/certs.sh [--dir DIR] [--password PW] [--days N] [--force] NODE[=NAME,...] ...
#   deploy/certs.sh --dir certs node0=node0,10.0.0.5 node1=node1.lan,10.0.0.6 node2
#
# In DIR (default ./certs):
#   ca.pem       the cluster's CA certificate (public; --tls-ca, optional since every .pfx holds it)
#   ca.key       the CA's private key: keep it off the nodes; it signs new node certificates
#   NODE.pfx     NODE's certificate, its private key and the CA certificate: give it to that node
#                with --tls-cert NODE.pfx (and the password in BACKPROP_TLS_PASSWORD)
# Each NODE gets the names after '=' (host names and IP addresses, comma-separated; default: NODE
# itself) as subject alternative names, and may act as TLS server and client. Peers are checked
# against the CA only, not by name, so the names are for your records and other tools.
#
# An existing CA in DIR is reused, so adding a node later keeps the others' certificates valid; to
# start a new CA, use a new DIR. Existing node files are not overwritten without --force.
#
# Options:
#   --dir DIR        where the files go (default: certs)
#   --password PW    password of the .pfx files (default: $BACKPROP_TLS_PASSWORD, else none)
#   --days N         validity of node certificates in days (default 365; the CA: 3650)
#   --force          overwrite existing node files
#   -h, --help       this text
set -euo pipefail

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }

dir=certs
password=${BACKPROP_TLS_PASSWORD:-}
days=365
force=0
nodes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:?--dir needs a directory}"; shift 2 ;;
    --password) password="${2?--password needs a value}"; shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; nodes+=("$@"); break ;;
    -*) echo "certs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) nodes+=("$1"); shift ;;
  esac
done
if [ ${#nodes[@]} -eq 0 ]; then
  echo "certs.sh: name at least one node (see --help)" >&2
  exit 2
fi
case "$days" in ''|*[!0-9]*) echo "certs.sh: --days $days: expected a whole number of days" >&2; exit 2 ;; esac
command -v openssl >/dev/null || { echo "certs.sh: openssl not found (Debian: apt-get install openssl)" >&2; exit 2; }

# Check every name and file before making anything.
for spec in "${nodes[@]}"; do
  node=${spec%%=*}
  case "$node" in ''|*[!A-Za-z0-9._-]*) echo "certs.sh: '$node': a node name takes letters, digits, '.', '_' and '-'" >&2; exit 2 ;; esac
  if [ -e "$dir/$node.pfx" ] && [ "$force" -eq 0 ]; then
    echo "certs.sh: $dir/$node.pfx exists; not overwriting it without --force" >&2
    exit 2
  fi
done

mkdir -p "$dir"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -e "$dir/ca.pem" ] || [ -e "$dir/ca.key" ]; then
  if [ ! -e "$dir/ca.pem" ] || [ ! -e "$dir/ca.key" ]; then
    echo "certs.sh: $dir holds only one of ca.pem and ca.key; use another --dir for a new CA" >&2
    exit 2
  fi
  echo "using the CA in $dir/ca.pem"
else
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \
    -subj "/O=backprop/CN=backprop development CA $(date +%Y-%m-%d)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
  chmod 644 "$dir/ca.pem"
  echo "made the CA: $dir/ca.pem (its key $dir/ca.key signs node certificates; keep it off the nodes)"
fi

for spec in "${nodes[@]}"; do
  node=${spec%%=*}
  names=$node
  [ "$spec" != "$node" ] && names=${spec#*=}
  san=""
  IFS=',' read -ra parts <<< "$names"
  for name in "${parts[@]}"; do
    [ -z "$name" ] && continue
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then san+="IP:$name,"; else san+="DNS:$name,"; fi
  done
  san=${san%,}
  cat > "$work/ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/O=backprop/CN=$node" -keyout "$work/$node.key" -out "$work/$node.csr" 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
  openssl x509 -req -in "$work/$node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -CAserial "$work/serial" \
    -days "$days" -sha256 -extfile "$work/ext" -out "$work/$node.pem" 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
  CERTS_SH_PASSWORD=$password openssl pkcs12 -export -name "$node" -inkey "$work/$node.key" -in "$work/$node.pem" -certfile "$dir/ca.pem" \
    -passout env:CERTS_SH_PASSWORD -out "$dir/$node.pfx" 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
  echo "made $dir/$node.pfx ($san, $days days)"
done
if [ -z "$password" ]; then
  echo "note: the .pfx files have no password; give one with --password or BACKPROP_TLS_PASSWORD to protect the keys"
fi
