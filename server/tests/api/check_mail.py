"""Checks the emails the server sent, as a receiving mail system would read them.

Each FILE is one message as delivered (raw bytes). Python's `email` package (policy=default)
parses it; it must have no parse defects, exactly one Message-ID on the sending domain (no two
messages sharing one), `Auto-Submitted: auto-generated`, a Date with a time zone, a subject, a
recipient, and readable text and HTML parts. With --dkim, its DKIM signature must verify with
dkimpy against the public key given as the TXT record (no DNS is asked), for that selector and
domain, covering the headers a reader trusts.

Prints one JSON object per message (file, message_id, date, subject, dkim) on stdout, every
failure on stderr, and exits 1 if anything failed.

    check_mail.py --sending-domain trust.example \
        [--dkim SELECTOR DOMAIN 'v=DKIM1; k=ed25519; p=...'] [--no-dkim] FILE...
"""

import argparse
import email
import email.policy
import email.utils
import json
import sys

import dkim

SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"auto-submitted"]


def check(path, raw, args, failures, seen_ids):
    def fail(reason):
        failures.append(f"{path}: {reason}")

    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.defects:
            fail(f"parse defects {[type(d).__name__ for d in part.defects]}")

    ids = message.get_all("Message-ID") or []
    message_id = str(ids[0]).strip() if ids else ""
    if len(ids) != 1:
        fail(f"{len(ids)} Message-ID headers")
    else:
        _, address = email.utils.parseaddr(message_id)
        local, _, domain = address.rpartition("@")
        if not (message_id.startswith("<") and message_id.endswith(">") and local):
            fail(f"Message-ID {message_id!r} is not <id@domain>")
        elif domain.lower() != args.sending_domain.lower():
            fail(f"Message-ID {message_id!r} is not on {args.sending_domain}")
        if message_id in seen_ids:
            fail(f"Message-ID {message_id!r} also names {seen_ids[message_id]}")
        seen_ids[message_id] = path

    auto = message.get_all("Auto-Submitted") or []
    if [str(value).strip() for value in auto] != ["auto-generated"]:
        fail(f"Auto-Submitted is {auto!r}, not one 'auto-generated'")

    date = message["Date"]
    when = getattr(date, "datetime", None) if date is not None else None
    if when is None or when.tzinfo is None:
        fail(f"Date {date!r} is missing or has no time zone")

    if not message["Subject"]:
        fail("no Subject")
    if not message["To"] or not message["From"]:
        fail("no To or From")
    for kind in ("plain", "html"):
        body = message.get_body(preferencelist=(kind,))
        if body is None or not body.get_content().strip():
            fail(f"no readable text/{kind} part")

    verdict = None
    signatures = message.get_all("DKIM-Signature") or []
    if args.dkim:
        selector, domain, record = args.dkim
        name = f"{selector}._domainkey.{domain}.".encode()

        def dnsfunc(asked, timeout=5):
            return record.encode() if asked == name else None

        verdict = bool(dkim.verify(raw, dnsfunc=dnsfunc))
        if not verdict:
            fail("the DKIM signature does not verify")
        if len(signatures) != 1:
            fail(f"{len(signatures)} DKIM-Signature headers")
        else:
            tags = dkim.util.parse_tag_value(
                b"".join(str(signatures[0]).encode().split())
            )
            if tags.get(b"d", b"").lower() != domain.lower().encode():
                fail(f"DKIM d= is {tags.get(b'd')!r}, not {domain}")
            if tags.get(b"s") != selector.encode():
                fail(f"DKIM s= is {tags.get(b's')!r}, not {selector}")
            covered = tags.get(b"h", b"").lower().split(b":")
            missing = [h.decode() for h in SIGNED if h not in covered]
            if missing:
                fail(f"DKIM does not sign {missing}")
    elif args.no_dkim and signatures:
        fail("a DKIM-Signature where none was configured")

    return {
        "file": path,
        "message_id": message_id,
        "date": when.isoformat() if when else None,
        "subject": str(message["Subject"] or ""),
        "dkim": verdict,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sending-domain", required=True)
    parser.add_argument("--dkim", nargs=3, metavar=("SELECTOR", "DOMAIN", "TXT"))
    parser.add_argument("--no-dkim", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    failures, seen_ids = [], {}
    for path in args.files:
        with open(path, "rb") as file:
            raw = file.read()
        try:
            print(json.dumps(check(path, raw, args, failures, seen_ids)))
        except Exception as error:  # a message that breaks the parser is a failure too
            failures.append(f"{path}: {type(error).__name__}: {error}")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
