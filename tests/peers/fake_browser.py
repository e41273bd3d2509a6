"""A stand-in browser (for `browser = "..."` and $BROWSER): it records, one JSON line per start in
$FAKE_BROWSER_LOG, its argv, what the page it was given holds and that page's and directory's
permissions, then exits (as a browser handing the URL to its running instance does).

Tests install it as an executable named like a browser (e.g. `firefox`, `chrome`) with
`install(bin_dir, name)`."""

import json
import os
import stat
import sys
import urllib.parse
import urllib.request


def install(bin_dir, name):
    os.makedirs(bin_dir, exist_ok=True)
    path = os.path.join(bin_dir, name)
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({os.path.abspath(__file__)!r}, run_name='__main__')\n")
    os.chmod(path, 0o755)
    return path


def records(log_path):
    if not os.path.exists(log_path):
        return []
    return [json.loads(line) for line in open(log_path).read().splitlines()]


def main():
    record = {"argv": sys.argv, "page": None}
    target = sys.argv[-1]
    if target.startswith("file://"):
        path = urllib.request.url2pathname(urllib.parse.urlsplit(target).path)
        st, dst = os.stat(path), os.stat(os.path.dirname(path))
        record.update(page=open(path, encoding="utf-8").read(), page_mode=stat.S_IMODE(st.st_mode),
                      dir_mode=stat.S_IMODE(dst.st_mode), path=path)
    with open(os.environ["FAKE_BROWSER_LOG"], "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
