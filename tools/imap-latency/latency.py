#!/usr/bin/env python3
"""IMAP latency as a client sees it, for epost and a reference server side by side.

Each target is NAME=HOST:PORT:USER:PASSWORD. Every phase runs against every
target in turn, in the same run, so both see the same machine load:

  append   imaplib APPEND of --messages messages of about 1 KB into a fresh
           folder (imaplib writes the literal and its CRLF separately, as
           many clients do)
  raw      the same APPEND written in one piece (LITERAL+ when offered)
  store    --ops single `UID STORE n +FLAGS/-FLAGS (\\Seen)` in that folder
  fetch    the first `FETCH 1:* (ENVELOPE)` on a new connection, then a
           second one (run it right after restarting the server to see the
           cold figure)
  login    --ops connect + LOGIN + LOGOUT
  busy     --clients concurrent clients, each in its own folder, doing
           --rounds rounds of APPEND, STORE, EXPUNGE

Figures are milliseconds per operation: median, 95th percentile, max.
The folders it makes are called latency-*; `--keep` leaves them behind
(the fetch phase needs the append phase's folder: run both, or --keep).

Example:
  latency.py --phases append,store,fetch,login,busy \\
      epost=127.0.0.1:2143:alice@example.test:pass \\
      dovecot=127.0.0.1:14143:testuser1@example.test:pass
"""

import argparse
import imaplib
import json
import socket
import statistics
import sys
import threading
import time

FOLDER = "latency-main"


def message(i, size=1000):
    body = ("line %d of a message to measure with\r\n" % i) * (size // 40 + 1)
    return (
        "From: Bench <bench@example.test>\r\n"
        "To: Alice <alice@example.test>\r\n"
        "Subject: latency %d\r\n"
        "Date: Wed, 3 Dec 2026 10:00:00 +0000\r\n"
        "Message-ID: <latency-%d@example.test>\r\n"
        "\r\n" % (i, i) + body
    ).encode()


def stats(samples):
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
        "total_s": round(sum(ordered), 3),
    }


class Target:
    def __init__(self, spec):
        name, rest = spec.split("=", 1)
        host, port, user, password = rest.split(":", 3)
        self.name, self.host, self.port = name, host, int(port)
        self.user, self.password = user, password

    def connect(self):
        imap = imaplib.IMAP4(self.host, self.port)
        imap.login(self.user, self.password)
        return imap


def ok(result):
    typ, data = result
    if typ != "OK":
        raise RuntimeError("server said %s %r" % (typ, data))
    return data


def fresh_folder(imap, name):
    imap.delete(name)  # may fail: it did not exist
    ok(imap.create(name))


def phase_append(target, args):
    imap = target.connect()
    fresh_folder(imap, FOLDER)
    samples = []
    for i in range(args.messages):
        data = message(i)
        start = time.perf_counter()
        ok(imap.append(FOLDER, None, None, data))
        samples.append(time.perf_counter() - start)
    imap.logout()
    return stats(samples)


def read_tagged(sock_file, tag):
    while True:
        line = sock_file.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise RuntimeError(line)
            return line


def phase_raw(target, args):
    sock = socket.create_connection((target.host, target.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    greeting = f.readline()
    sock.sendall(b"a LOGIN %s %s\r\n" % (target.user.encode(), target.password.encode()))
    login = read_tagged(f, b"a")
    sock.sendall(b"c CAPABILITY\r\n")
    caps = b""
    while True:
        line = f.readline()
        if line.startswith(b"* CAPABILITY"):
            caps += line
        if line.startswith(b"c "):
            break
    plus = b"LITERAL+" in (greeting + login + caps).upper()
    name = FOLDER + "-raw"
    sock.sendall(b"d DELETE %s\r\ne CREATE %s\r\n" % (name.encode(), name.encode()))
    while not f.readline().startswith(b"e "):
        pass
    samples = []
    for i in range(args.messages):
        data = message(i)
        tag = b"r%d" % i
        start = time.perf_counter()
        if plus:
            sock.sendall(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag, name.encode(), len(data), data))
        else:
            sock.sendall(b"%s APPEND %s {%d}\r\n" % (tag, name.encode(), len(data)))
            if not f.readline().startswith(b"+"):
                raise RuntimeError("no continuation")
            sock.sendall(data + b"\r\n")
        read_tagged(f, tag)
        samples.append(time.perf_counter() - start)
    if not args.keep:
        sock.sendall(b"z DELETE %s\r\n" % name.encode())
        read_tagged(f, b"z")
    sock.close()
    result = stats(samples)
    result["literal_plus"] = plus
    return result


def phase_store(target, args):
    imap = target.connect()
    typ, data = imap.select(FOLDER)
    if typ != "OK" or int(data[0]) == 0:
        imap.logout()
        return {"error": "no %s folder with messages: run the append phase first" % FOLDER}
    uids = ok(imap.uid("SEARCH", None, "ALL"))[0].split()
    samples = []
    for i in range(args.ops):
        uid = uids[i % len(uids)].decode()
        op = "+FLAGS" if (i // len(uids)) % 2 == 0 else "-FLAGS"
        start = time.perf_counter()
        ok(imap.uid("STORE", uid, op, "(\\Seen)"))
        samples.append(time.perf_counter() - start)
    imap.logout()
    return stats(samples)


def phase_fetch(target, args):
    imap = target.connect()
    typ, data = imap.select(FOLDER, readonly=True)
    if typ != "OK":
        imap.logout()
        return {"error": "no %s folder: run the append phase first" % FOLDER}
    exists = int(data[0])
    result = {"messages": exists}
    for which in ("first_s", "second_s"):
        start = time.perf_counter()
        ok(imap.fetch("1:*", "(ENVELOPE)"))
        result[which] = round(time.perf_counter() - start, 4)
    imap.logout()
    return result


def phase_login(target, args):
    samples = []
    for _ in range(args.ops):
        start = time.perf_counter()
        imap = imaplib.IMAP4(target.host, target.port)
        imap.login(target.user, target.password)
        samples.append(time.perf_counter() - start)
        imap.logout()
    return stats(samples)


def phase_busy(target, args):
    per_op = {"APPEND": [], "STORE": [], "EXPUNGE": []}
    lock = threading.Lock()
    errors = []
    ready = threading.Barrier(args.clients)

    def client(n):
        try:
            imap = target.connect()
            name = "latency-busy-%d" % n
            fresh_folder(imap, name)
            ok(imap.select(name))
            ready.wait()
            mine = {"APPEND": [], "STORE": [], "EXPUNGE": []}
            for r in range(args.rounds):
                start = time.perf_counter()
                ok(imap.append(name, None, None, message(r)))
                mine["APPEND"].append(time.perf_counter() - start)
                start = time.perf_counter()
                ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
                mine["STORE"].append(time.perf_counter() - start)
                start = time.perf_counter()
                ok(imap.expunge())
                mine["EXPUNGE"].append(time.perf_counter() - start)
            imap.close()
            if not args.keep:
                imap.delete(name)
            imap.logout()
            with lock:
                for k, v in mine.items():
                    per_op[k].extend(v)
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(e))
            ready.abort()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = {k: stats(v) for k, v in per_op.items()}
    if errors:
        result["errors"] = errors[:3]
    return result


PHASES = {
    "append": phase_append,
    "raw": phase_raw,
    "store": phase_store,
    "fetch": phase_fetch,
    "login": phase_login,
    "busy": phase_busy,
}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="+", help="NAME=HOST:PORT:USER:PASSWORD")
    parser.add_argument("--phases", default="append,store,fetch,login,busy")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="leave the folders behind")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    targets = [Target(t) for t in args.targets]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    results = {}
    for phase in phases:
        for target in targets:
            started = time.perf_counter()
            try:
                result = PHASES[phase](target, args)
            except Exception as e:  # noqa: BLE001 - reported, the run goes on
                result = {"error": repr(e)}
            result["wall_s"] = round(time.perf_counter() - started, 2)
            results.setdefault(phase, {})[target.name] = result
            if not args.json:
                print("%-7s %-8s %s" % (phase, target.name, json.dumps(result)), flush=True)
    if not args.keep and "append" in phases:
        for target in targets:
            try:
                imap = target.connect()
                imap.delete(FOLDER)
                imap.logout()
            except Exception:  # noqa: BLE001 - best effort
                pass
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
