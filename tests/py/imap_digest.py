"""A mail client's view of one user's INBOX, over IMAP with Python's imaplib.

    imap_digest.py HOST:PORT USER PASSWORD digest      -> {"uid": "sha256 of BODY[]", ...}
    imap_digest.py HOST:PORT USER PASSWORD expunge UID -> deletes that message, prints "ok"

Prints one JSON object; exits non-zero (with the reason on stderr) if the
server refuses the login or any command.
"""

import hashlib
import imaplib
import json
import sys


def main():
    address, user, password, action = sys.argv[1:5]
    host, port = address.rsplit(":", 1)
    imap = imaplib.IMAP4(host, int(port))
    imap.login(user, password)
    typ, _ = imap.select("INBOX")
    if typ != "OK":
        raise SystemExit("SELECT INBOX failed")
    if action == "digest":
        typ, data = imap.uid("SEARCH", None, "ALL")
        if typ != "OK":
            raise SystemExit("UID SEARCH failed")
        out = {}
        for uid in data[0].split():
            typ, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            if typ != "OK" or not fetched or not isinstance(fetched[0], tuple):
                raise SystemExit(f"UID FETCH {uid!r} failed: {fetched!r}")
            out[uid.decode()] = hashlib.sha256(fetched[0][1]).hexdigest()
        print(json.dumps(out, sort_keys=True))
    elif action == "expunge":
        uid = sys.argv[5]
        typ, _ = imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        if typ != "OK":
            raise SystemExit("UID STORE failed")
        typ, _ = imap.expunge()
        if typ != "OK":
            raise SystemExit("EXPUNGE failed")
        print(json.dumps("ok"))
    else:
        raise SystemExit(f"unknown action {action!r}")
    imap.logout()


if __name__ == "__main__":
    main()
