"""Writes an mbox of N varied messages with Python's mailbox module.

Usage: make_mbox.py PATH N
"""

import mailbox
import sys
from email.message import EmailMessage


def main():
    path, count = sys.argv[1], int(sys.argv[2])
    box = mailbox.mbox(path, create=True)
    box.lock()
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = f"sender{i % 7}@example.net"
        msg["To"] = "alice@example.test"
        msg["Subject"] = f"message {i} \u00fcber"
        msg["Date"] = "Mon, 23 Nov 2026 12:00:00 +0000"
        body = f"Hello {i}.\nFrom here on, a line that mbox must quote.\n>From quoted already\n"
        msg.set_content(body * (1 + i % 5))
        if i % 10 == 0:
            msg.add_attachment(bytes(range(256)) * (4 + i % 3), maintype="application",
                               subtype="octet-stream", filename=f"file{i}.bin")
        entry = mailbox.mboxMessage(msg)
        entry.set_from("MAILER-DAEMON", True)
        if i % 3 == 0:
            entry.set_flags("RO")
        box.add(entry)
    box.flush()
    box.unlock()
    box.close()


if __name__ == "__main__":
    main()
