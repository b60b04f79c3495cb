#!/usr/bin/env bash
# Builds the DNSSEC lab in directory $1: zones signed now (nsec.example with
# NSEC, its signed child child.nsec.example with a DS in the parent,
# nsec3.example with NSEC3), a name made bogus after signing, and the
# configurations of NSD (authoritative, port $2) and of a validating Unbound
# (port $3) holding the two zones' keys as trust anchors. tests/forwarding.rs
# starts both daemons and Rempart in front of Unbound.
set -euo pipefail
dir=$1 nsd_port=$2 unbound_port=$3
mkdir -p "$dir"
cd "$dir"

cat > child.zone <<ZONE
\$ORIGIN child.nsec.example.
\$TTL 300
@    IN SOA ns.nsec.example. hostmaster.nsec.example. 1 3600 600 86400 300
@    IN NS  ns.nsec.example.
www  IN A   198.51.100.20
ZONE

cat > nsec.zone <<ZONE
\$ORIGIN nsec.example.
\$TTL 300
@      IN SOA ns.nsec.example. hostmaster.nsec.example. 1 3600 600 86400 300
@      IN NS  ns.nsec.example.
ns     IN A   127.0.0.1
www    IN A   198.51.100.10
www    IN AAAA 2001:db8::10
alias  IN CNAME www.nsec.example.
into   IN CNAME bad.nsec.example.
bad    IN A   203.0.113.66
bogus  IN A   198.51.100.66
*.wild IN A   198.51.100.30
child  IN NS  ns.nsec.example.
ZONE

cat > nsec3.zone <<ZONE
\$ORIGIN nsec3.example.
\$TTL 300
@      IN SOA ns.nsec3.example. hostmaster.nsec3.example. 1 3600 600 86400 300
@      IN NS  ns.nsec3.example.
ns     IN A   127.0.0.1
www    IN A   198.51.100.40
ZONE

sign() { # zone origin [ldns-signzone options]
  local zone=$1 origin=$2
  shift 2
  local ksk zsk
  ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$origin")
  zsk=$(ldns-keygen -a ECDSAP256SHA256 "$origin")
  ldns-signzone "$@" -o "$origin" "$zone" "$ksk" "$zsk"
  cat "$ksk.key" >> anchors
  echo "$ksk"
}
: > anchors
child_ksk=$(sign child.zone child.nsec.example.)
# The child's DS goes into the parent before the parent is signed.
cat "$child_ksk.ds" >> nsec.zone
sign nsec.zone nsec.example. >/dev/null
sign nsec3.zone nsec3.example. -n -s 0a0b >/dev/null
# The child's key is not an anchor: it is reached through the DS.
grep -v "^child" anchors > anchors.tmp && mv anchors.tmp anchors

# Made bogus after signing: the address no longer matches its signature.
sed -i 's/^\(bogus\.nsec\.example\.\s.*\sA\s\+\)198\.51\.100\.66$/\1198.51.100.99/' nsec.zone.signed
grep -q '198.51.100.99' nsec.zone.signed

cat > nsd.conf <<CONF
server:
  ip-address: 127.0.0.1@$nsd_port
  port: $nsd_port
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  zonelistfile: "$dir/zone.list"
  pidfile: "$dir/nsd.pid"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  logfile: "$dir/nsd.log"
  server-count: 1
  verbosity: 1
  hide-version: yes
remote-control:
  control-enable: no
zone:
  name: nsec.example.
  zonefile: nsec.zone.signed
zone:
  name: child.nsec.example.
  zonefile: child.zone.signed
zone:
  name: nsec3.example.
  zonefile: nsec3.zone.signed
CONF

cat > unbound.conf <<CONF
server:
  interface: 127.0.0.1@$unbound_port
  port: $unbound_port
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  logfile: "$dir/unbound.log"
  use-syslog: no
  do-daemonize: no
  num-threads: 1
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor-file: "$dir/anchors"
  val-log-level: 2
  ede: yes
  qname-minimisation: no
  target-fetch-policy: "0 0 0 0 0"
  verbosity: 1
remote-control:
  control-enable: no
stub-zone:
  name: "nsec.example."
  stub-addr: 127.0.0.1@$nsd_port
stub-zone:
  name: "child.nsec.example."
  stub-addr: 127.0.0.1@$nsd_port
stub-zone:
  name: "nsec3.example."
  stub-addr: 127.0.0.1@$nsd_port
CONF
