"""`python -m loadtest run ...` (one headless locust run), `python -m loadtest sweep ...`
(concurrency sweep, lorag and vLLM's own server) and `python -m loadtest soak ...` (a long
run: errors and memory). `--help` on each for the options."""

from __future__ import annotations

import sys

USAGE = """usage: python -m loadtest {run,sweep} [options]

  run     headless locust run against a server: CSV, HTML and summary.json
  sweep   concurrency sweep on lorag and on vLLM's OpenAI server: JSON and PNG
  soak    a long run at one concurrency: error rate and resident memory, start to end
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from loadtest.runner import main as run_main  # imports locust (gevent patching)

        return run_main(rest)
    if command == "soak":
        from loadtest.soak import main as soak_main

        return soak_main(rest)
    if command == "sweep":
        from loadtest.sweep import main as sweep_main

        return sweep_main(rest)
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
