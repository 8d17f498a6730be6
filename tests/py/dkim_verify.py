"""Verifies every DKIM signature of a message with dkimpy, an
implementation independent of ours, asking the given DNS server for keys.

Usage: dkim_verify.py MESSAGE_FILE DNS_IP:PORT
Prints `dkim=pass|fail a=ALGORITHM d=DOMAIN s=SELECTOR` per signature, in
the order they appear, or `dkim=none` when there is none.
"""

import sys

import dkim
import dns.resolver

message = open(sys.argv[1], "rb").read()
ip, port = sys.argv[2].rsplit(":", 1)
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [ip]
resolver.port = int(port)


def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver.resolve(name.rstrip("."), "TXT", lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b"".join(answer[0].strings)


checker = dkim.DKIM(message)
fields = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
if not fields:
    print("dkim=none")
for index, value in enumerate(fields):
    tags = dict(
        part.strip().split(b"=", 1) for part in value.replace(b"\r\n", b"").split(b";") if b"=" in part
    )
    tags = {k.strip(): b"".join(v.split()) for k, v in tags.items()}
    ok = checker.verify(idx=index, dnsfunc=txt)
    print(
        "dkim=" + ("pass" if ok else "fail"),
        "a=" + tags.get(b"a", b"?").decode(),
        "d=" + tags.get(b"d", b"?").decode(),
        "s=" + tags.get(b"s", b"?").decode(),
    )
