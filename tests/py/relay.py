"""Alice submits mail for dave@example.net (outside her realm).

Usage: relay.py SUBMISSION accepted|refused
"""

import smtplib
import sys

host, port = sys.argv[1].rsplit(":", 1)
expect = sys.argv[2]
smtp = smtplib.SMTP(host, int(port))
smtp.login("alice@example.test", "a-pw")
message = b"From: alice@example.test\r\nTo: dave@example.net\r\nSubject: across the border\r\n\r\nhi\r\n"
try:
    refused = smtp.sendmail("alice@example.test", ["dave@example.net"], message)
    assert expect == "accepted", "accepted, but a refusal was expected"
    assert refused == {}, refused
except smtplib.SMTPRecipientsRefused as e:
    assert expect == "refused", e
    code, text = e.recipients["dave@example.net"]
    assert code == 550, (code, text)
    print("refused:", text.decode())
smtp.quit()
print("ok")
