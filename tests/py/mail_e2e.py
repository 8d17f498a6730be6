"""Two epost nodes seen through their gateways by Python's standard mail
clients: alice submits on her node with AUTH; bob, idling in IMAP on his
node, sees the message arrive; carol reads it over POP3 on hers.

Usage: mail_e2e.py ALICE_SUBMISSION BOB_IMAP CAROL_POP3 PASSWORD_FILE
(addresses are host:port; the file holds "address password" lines).
"""

import imaplib
import poplib
import smtplib
import sys
import threading
from email.message import EmailMessage


def hostport(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    submission, imap_addr, pop_addr, passwords = sys.argv[1:5]
    secrets = dict(line.split() for line in open(passwords) if line.strip())

    # Bob idles on his own node before anything is sent.
    imap = imaplib.IMAP4(*hostport(imap_addr))
    imap.login("bob@example.test", secrets["bob@example.test"])
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data[0] == b"0", (typ, data)
    tag = imap._new_tag()
    imap.send(tag + b" IDLE\r\n")
    assert imap.readline().startswith(b"+"), "no IDLE continuation"
    seen = {}

    def idle():
        line = imap.readline()
        seen["line"] = line

    waiter = threading.Thread(target=idle)
    waiter.start()

    message = EmailMessage()
    message["From"] = "alice@example.test"
    message["To"] = "bob@example.test, carol@example.test"
    message["Subject"] = "quarterly figures \u00e9"
    message.set_content("Hello bob and carol,\nthe figures are attached.\n")
    message.add_attachment(bytes(range(256)) * 64, maintype="application",
                           subtype="octet-stream", filename="figures.bin")
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))

    smtp = smtplib.SMTP(*hostport(submission))
    smtp.ehlo()
    smtp.login("alice@example.test", secrets["alice@example.test"])
    refused = smtp.sendmail("alice@example.test",
                            ["bob@example.test", "carol@example.test"], raw)
    assert refused == {}, refused
    smtp.quit()

    waiter.join(60)
    assert not waiter.is_alive(), "IDLE saw nothing within 60 s"
    assert seen["line"] == b"* 1 EXISTS\r\n", seen
    imap.send(b"DONE\r\n")
    while True:
        line = imap.readline()
        if line.startswith(tag):
            assert b" OK" in line, line
            break

    typ, data = imap.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK", (typ, data)
    fetched = data[0][1]
    # The gateway prepends its Received: trace line; the rest is exact.
    assert fetched.endswith(raw), "FETCH BODY[] is not the bytes sent"
    assert fetched.startswith(b"Received: "), fetched[:200]
    typ, data = imap.fetch("1", "(BODYSTRUCTURE)")
    assert typ == "OK" and b"figures.bin" in data[0], data

    # The rest of a session as Thunderbird runs it, on the real node.
    typ, data = imap.capability()
    for wanted in (b"IDLE", b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"ID"):
        assert wanted in data[0], data
    typ, data = imap.xatom("ID", '("name" "Thunderbird" "version" "128.0")')
    assert typ == "OK", (typ, data)
    typ, data = imap.list('""', "*")
    listing = b" ".join(data)
    for special in (b"\\Sent", b"\\Trash", b"\\Drafts", b"\\Junk", b"\\Archive"):
        assert special in listing, listing
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK" and b"UID 1" in data[0], data
    typ, data = imap.uid("MOVE", "1", "Trash")
    assert typ == "OK", (typ, data)
    typ, data = imap.select("Trash")
    assert data[0] == b"1", data
    typ, _ = imap.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    typ, data = imap.expunge()
    assert typ == "OK" and data[0] == b"1", data
    typ, data = imap.select("INBOX")
    assert data[0] == b"0", data
    imap.logout()

    pop = poplib.POP3(*hostport(pop_addr))
    pop.user("carol@example.test")
    pop.pass_(secrets["carol@example.test"])
    count, _ = pop.stat()
    assert count == 1, count
    _, lines, _ = pop.retr(1)
    assert b"\r\n".join(lines).endswith(raw.rstrip(b"\r\n")), "RETR is not the bytes sent"
    pop.quit()
    print("ok")


if __name__ == "__main__":
    main()
