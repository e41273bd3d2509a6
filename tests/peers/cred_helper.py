"""A stand-in credential_process helper (what okta-aws-cli, aws_signing_helper or a company's helper
would be), for `[idp.X] type = "process"` tests. It counts its runs and behaves as told:

    python cred_helper.py LOG MODE [SECONDS]

LOG   a file that gets one line per run: "<pid> <mode> stdin=<closed|tty|pipe...>", so a test
      counts runs and sees what stdin it was given
MODE  ok          a valid document; SECONDS (default 3600) until Expiration
      noexp       a valid document without Expiration (long-lived keys)
      slow        like ok, after sleeping SECONDS (widens the race of concurrent callers)
      slownoexp   like noexp, after sleeping SECONDS
      garbage     "hello" on stdout
      badversion  Version "1" (a string, which botocore rejects)
      control     a document whose SecretAccessKey holds an escape sequence
      huge        10 MB on stdout
      fail        a stderr line with control characters, then exit 3
      hang        sleeps SECONDS (default 3600), as does a child it starts (to test the group kill)
      env         a valid document, and the value of $HELPER_SECRET is written to LOG
      daemon      a valid document, leaving behind a child that holds stdout and stderr open for an
                  hour (a helper that starts an agent)
      prompt      asks "Helper PIN: " on stderr, reads a line on stdin: a document if it is 1234,
                  else "wrong PIN" and exit 1

The keys are fixed (moto accepts any), the session token says which run made it.
"""

import datetime
import json
import os
import subprocess
import sys
import time

KEY_ID = "ASIAHELPEREXAMPLE001"
SECRET = "helper/Secret/Example+Key0000000000000000"


def stdin_kind():
    try:
        os.fstat(0)
    except OSError:
        return "closed"
    if os.isatty(0):
        return "tty"
    try:
        return "devnull" if os.path.samestat(os.fstat(0), os.stat(os.devnull)) else "pipe"
    except OSError:
        return "other"


def document(seconds=3600, expiration=True, run=0):
    doc = {"Version": 1, "AccessKeyId": KEY_ID, "SecretAccessKey": SECRET,
           "SessionToken": f"helper-session-token-run-{run}-{os.getpid()}"}
    if expiration:
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
        doc["Expiration"] = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def main():
    log, mode = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else None
    extra = ""
    if mode == "env":
        extra = " secret=" + os.environ.get("HELPER_SECRET", "-")
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {mode} stdin={stdin_kind()} pgid={os.getpgrp()}{extra}\n")
    with open(log) as f:
        run = len(f.readlines())
    if mode in ("ok", "env"):
        print(json.dumps(document(seconds or 3600, run=run)))
    elif mode == "prompt":
        sys.stderr.write("Helper PIN: ")
        sys.stderr.flush()
        if sys.stdin.readline().strip() != "1234":
            sys.exit("wrong PIN")
        print(json.dumps(document(run=run)))
    elif mode == "daemon":
        print(json.dumps(document(run=run)))
        sys.stdout.flush()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open(log, "a") as f:
            f.write(f"child {child.pid}\n")
    elif mode == "noexp":
        print(json.dumps(document(expiration=False, run=run)))
    elif mode == "slownoexp":
        start = time.time()
        time.sleep(seconds or 1)
        with open(log + ".spans", "a") as f:  # when it ran: tests look at which runs overlapped
            f.write(f"{start} {time.time()}\n")
        print(json.dumps(document(expiration=False, run=run)))
    elif mode == "slow":
        time.sleep(seconds or 1)
        print(json.dumps(document(run=run)))
    elif mode == "garbage":
        print("hello")
    elif mode == "badversion":
        print(json.dumps({**document(run=run), "Version": "1"}))
    elif mode == "control":
        print(json.dumps({**document(run=run), "SecretAccessKey": "abc\x1b]0;pwned\x07def"}))
    elif mode == "huge":
        sys.stdout.write("x" * 10_000_000)
        sys.stdout.flush()
    elif mode == "fail":
        sys.stderr.write("connecting to the IdP...\n")
        sys.stderr.write("error: \x1b[31mthe YubiKey\x1b]0;owned\x07 is not inserted\n")
        sys.exit(3)
    elif mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open(log, "a") as f:
            f.write(f"child {child.pid}\n")
        time.sleep(seconds or 3600)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
