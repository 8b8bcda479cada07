"""`python -m diffexp.gc [--host NAME] [--dry-run] [--tracking-uri URI]`: end the runs that a dead process left
RUNNING (SIGKILL, the OOM killer) as FAILED, with the reason. Every run records its pid, the pid's start time and
its host; a run whose process is gone from that host is an orphan. `python -m diffexp` does the same for this
host before each run."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from diffexp import cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("gc", __doc__)
    parser.add_argument("--host", default=None, help="the host whose runs to check (default: this one)")
    parser.add_argument("--dry-run", action="store_true", help="list the orphans, end nothing")
    args = parser.parse_args(argv)
    from diffexp.tracking.reconcile import close_orphans, find_orphans
    from diffexp.tracking.store import client_for

    client = client_for(args.tracking_uri)
    found = (find_orphans if args.dry_run else close_orphans)(client, args.host)
    for orphan in found:
        print(f"{'would end' if args.dry_run else 'ended'} FAILED: run {orphan.run_id} ({orphan.reason})")
    print(f"{len(found)} run(s) left RUNNING by a dead process in {client.tracking_uri}")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
