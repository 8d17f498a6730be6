"""Asks a DNS server questions and prints one line per answer.

Usage: dns_query.py IP:PORT NAME:TYPE...
Prints `NAME TYPE ANSWER` per record (TXT strings joined), or
`NAME TYPE NXDOMAIN` / `NAME TYPE NOANSWER`.
"""

import sys

import dns.resolver

ip, port = sys.argv[1].rsplit(":", 1)
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [ip]
resolver.port = int(port)
for question in sys.argv[2:]:
    name, kind = question.rsplit(":", 1)
    try:
        for record in resolver.resolve(name, kind):
            if kind == "TXT":
                text = b"".join(record.strings).decode()
            else:
                text = record.to_text()
            print(name, kind, text)
    except dns.resolver.NXDOMAIN:
        print(name, kind, "NXDOMAIN")
    except dns.resolver.NoAnswer:
        print(name, kind, "NOANSWER")
