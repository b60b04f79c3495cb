-- PowerDNS Recursor (4.8) as a secondary of Rempart's zones (shape 2):
-- lua-config-file in recursor.conf. It ignores NOTIFY for RPZ and asks at
-- `refresh`: set it to the delay you accept. packetcache-servfail-ttl=0 in
-- recursor.conf keeps a cached SERVFAIL from answering a newly listed name.
-- The order of the rpzPrimary calls is the precedence.
rpzPrimary("192.0.2.10:5353", "lcen.rpz.rempart.", {refresh=30,
  tsigname="xfr-key", tsigalgo="hmac-sha256", tsigsecret="<base64 secret of xfr.key>"})
rpzPrimary("192.0.2.10:5353", "anssi.rpz.rempart.", {refresh=30,
  tsigname="xfr-key", tsigalgo="hmac-sha256", tsigsecret="<base64 secret of xfr.key>"})
